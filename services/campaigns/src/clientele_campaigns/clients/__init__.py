"""The directory's organizations, persons and employees as the campaigns service keeps them."""
