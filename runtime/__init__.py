"""Processes, transport, stores and the ActorSystem that hosts ``actors`` across them."""
