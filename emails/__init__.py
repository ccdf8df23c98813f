"""Email: templates rendered per locale, the catalogue of samples, and mail providers."""
