//! tencent_v2 (to be implemented).

use super::*;

/// Encodes and signs a call, keeping the intermediate strings.
pub fn explain(
    _call: &Call,
    _creds: &Credentials,
    _clock: &Clock,
) -> Result<SigningExplanation, ProtocolError> {
    todo!()
}

/// Decodes a response.
pub fn decode(_resp: &HttpResponse) -> Outcome {
    todo!()
}

/// Parses a request.
pub fn parse_request(_req: &HttpRequest) -> Result<ParsedRequest, RequestError> {
    todo!()
}

/// Verifies a request.
pub fn verify(
    _req: &HttpRequest,
    _parsed: &ParsedRequest,
    _secrets: &dyn SecretStore,
    _now: i64,
    _nonces: &dyn NonceStore,
) -> Result<(), RequestError> {
    todo!()
}
