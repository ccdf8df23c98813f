"""Usage: what the product sends about its users, stored for the weekly measurement."""
