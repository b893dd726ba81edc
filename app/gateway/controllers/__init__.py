"""HTTP -> command -> bus -> view: one controller per resource, nothing else in them."""
