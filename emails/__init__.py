"""Email: what each template is given, rendering per locale and role, the catalogue of
samples, and the mail providers."""
