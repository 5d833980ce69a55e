"""The service's exception hierarchy: AppException(message, code, details), the pattern errq
reads (code becomes the event's error_code, details its details)."""


class AppException(Exception):
    status = 500

    def __init__(self, message, code="INTERNAL", details=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}


class Unavailable(AppException):
    status = 503


class NotFound(AppException):
    status = 404


class ValidationError(AppException):
    status = 422


class UpstreamError(AppException):
    status = 502


class PaymentDeclined(UpstreamError):
    status = 402


class InventoryTimeout(UpstreamError, TimeoutError):
    status = 504
