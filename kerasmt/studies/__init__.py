"""One module per study: the report's protocol, numbers and the steps its notebook runs."""
