"""What each command does, without click, printing or the environment (see ARCHITECTURE.md)."""
