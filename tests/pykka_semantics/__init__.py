"""pykka's documented behaviour, checked against actors in processes of their own."""
