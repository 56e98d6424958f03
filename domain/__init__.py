"""The pure core: conversations, their events and the ports the service talks through."""
