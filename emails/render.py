"""Email templates rendered per locale and role, and composed as messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import css_inline
import jinja2
import jinja2.meta
from temporalio.exceptions import ApplicationError

DEFAULT_LOCALE = "en"
SUBJECT_PREFIX = "Subject:"


def build_template_environment(directory: Path) -> jinja2.Environment:
    """One environment per process: templates are compiled once and cached.

    HTML is autoescaped, and a variable the context lacks is an error, never blank.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _template_error(name: str, err: jinja2.TemplateError) -> ApplicationError:
    """Retrying cannot mend a template: the send fails for good, naming file and line."""
    if isinstance(err, jinja2.TemplateSyntaxError):
        where = f"{err.name or name}, line {err.lineno}"
    else:
        # Jinja rewrites the traceback so that template frames carry the template's
        # file and line; the innermost one is where the error is.
        where = name
        tb = err.__traceback__
        while tb is not None:
            if "__jinja_exception__" in tb.tb_frame.f_globals:
                where = f"{Path(tb.tb_frame.f_code.co_filename).name}, line {tb.tb_lineno}"
            tb = tb.tb_next
    message = (
        f"uses the missing template {err.name}"
        if isinstance(err, jinja2.TemplateNotFound)
        else err.message or type(err).__name__
    )
    return ApplicationError(
        f"email template {where}: {message}", type="TemplateError", non_retryable=True
    )


def pick_template(
    templates: jinja2.Environment,
    template: str,
    locale: str,
    ext: str,
    role: str | None,
    *,
    fallback: bool = True,
) -> jinja2.Template:
    """The role's own wording first, then the template every role shares; English last,
    unless `fallback` is off (checking a translation must not accept the English one)."""
    names = []
    for language in dict.fromkeys([locale, DEFAULT_LOCALE] if fallback else [locale]):
        if role is not None:
            names.append(f"{template}.{role}.{language}.{ext}")
        names.append(f"{template}.{language}.{ext}")
    try:
        return templates.select_template(names)
    except jinja2.TemplateNotFound as err:
        # Retrying cannot make a template appear: fail the send for good.
        raise ApplicationError(
            f"no email template {' or '.join(names)}", type="TemplateNotFound", non_retryable=True
        ) from err
    except jinja2.TemplateError as err:
        raise _template_error(names[0], err) from err


def _render(chosen: jinja2.Template, context: Mapping[str, object]) -> str:
    try:
        return chosen.render(context)
    except jinja2.TemplateError as err:
        raise _template_error(chosen.name or "?", err) from err


def _inline_css(name: str, html: str) -> str:
    """Many mail clients drop <style> blocks: the layout's rules become style attributes.
    Rendering never reaches the network, so remote stylesheets are not fetched."""
    try:
        return css_inline.inline(html, load_remote_stylesheets=False)
    except css_inline.InlineError as err:
        raise ApplicationError(
            f"email template {name}: cannot inline its CSS: {err}",
            type="TemplateError",
            non_retryable=True,
        ) from err


def render_email(
    templates: jinja2.Environment,
    template: str,
    locale: str,
    context: Mapping[str, object],
    role: str | None = None,
    *,
    fallback: bool = True,
) -> RenderedEmail:
    """The subject is the text template's first `Subject:` line, removed from the body.

    `fallback=False` refuses to stand in English for a missing translation.
    """
    text_template = pick_template(templates, template, locale, "txt", role, fallback=fallback)
    html_template = pick_template(templates, template, locale, "html", role, fallback=fallback)
    text = _render(text_template, context)
    html = _inline_css(html_template.name or template, _render(html_template, context))
    subject = ""
    body: list[str] = []
    for line in text.splitlines():
        if not subject and line.startswith(SUBJECT_PREFIX):
            subject = line[len(SUBJECT_PREFIX) :].strip()
            continue
        body.append(line)
    if not subject:
        raise ApplicationError(
            f"email template {text_template.name} has no {SUBJECT_PREFIX} line",
            type="TemplateError",
            non_retryable=True,
        )
    return RenderedEmail(subject, "\n".join(body).strip() + "\n", html)


def compose_message(rendered: RenderedEmail, *, sender: str, recipient: str) -> EmailMessage:
    """The message as mail clients see it: plain text, with the HTML as its alternative."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered email to one recipient, as MailActivities hands it to a mailer.

    SendGrid's API takes these fields as they are; SMTP and the outbox need the MIME
    message (`mime`). Composing one with the `email` package costs about a millisecond
    of CPU, more than building SendGrid's request body, so only they pay for it.
    """

    sender: str
    recipient: str
    rendered: RenderedEmail
    message_id: str
    # X-Liftoff-Customer, X-Liftoff-Ledger-Key, the category, List-Unsubscribe...
    headers: Mapping[str, str]

    def mime(self, extra_headers: Mapping[str, str] | None = None) -> EmailMessage:
        """The MIME message; `extra_headers` replace its own of the same name. The
        `email` package refuses a header value with a line break (no injection)."""
        message = compose_message(self.rendered, sender=self.sender, recipient=self.recipient)
        message["Message-ID"] = self.message_id
        for name, value in {**self.headers, **(extra_headers or {})}.items():
            message[name] = value
        return message
