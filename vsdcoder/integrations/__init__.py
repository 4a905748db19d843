"""Optional integrations with other frameworks (imported only when used)."""
