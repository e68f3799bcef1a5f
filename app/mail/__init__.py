"""Mail out of the service: messages rendered from templates (text and HTML, overridable from
a folder) and handed to an SMTP server, or written as .eml files when there is none."""
