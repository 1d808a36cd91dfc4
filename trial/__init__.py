"""Shipped inside the dlptui package as dlptui.trial (package data); dlptui.resources finds it."""
