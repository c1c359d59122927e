"""Renders what Shiplane registers and deploys: task definitions and stack templates."""
