"""Use cases: stream a reply then persist it, task CRUD, titles. Imports the domain only."""
