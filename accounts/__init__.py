"""Customer accounts and everything known about them; ingestion; roles and scoping."""
