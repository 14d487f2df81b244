"""The durable-execution domain as plain pykka actors; never imports ``runtime``."""
