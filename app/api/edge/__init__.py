"""The HTTP edge: small pure-ASGI layers, each with one job, around every request.

From the outside in: RequestContext (request id, client address, log context, store deadline),
SecurityHeaders, RequestLog (metrics, the access line, the answer to an unhandled error) and
BodyLimit. The app factory stacks them in that order.
"""
