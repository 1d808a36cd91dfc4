"""Shipped inside the dlptui package as dlptui.infra (package data); dlptui.resources finds it."""
