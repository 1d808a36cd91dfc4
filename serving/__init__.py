"""Shipped inside the dlptui package as dlptui.serving (package data); dlptui.resources finds it."""
