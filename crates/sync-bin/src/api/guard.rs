//! Who may call the API: the bearer token.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use email_model::Store;

use super::{ApiError, Shared};

/// With a token configured, every route but health, readiness and the WebSocket (which has its
/// own signed token) needs `Authorization: Bearer <token>`.
pub(super) async fn require_token<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let matches = given.is_some_and(|given| {
            // Constant time over the expected length.
            given.len() == expected.len()
                && given
                    .bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !matches {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token".into(),
            )
            .into_response();
        }
    }
    next.run(request).await
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered (`-` outside one).
pub(super) fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// Gives every request an id (the client's `X-Request-Id` when it is short and plain, else a
/// new random one), answered in `X-Request-Id` and carried by error bodies.
pub(super) async fn with_request_id(request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| {
        let mut bytes = [0u8; 8];
        let _ = getrandom::fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Without a token the API trusts its loopback listener, so it must be sure the caller is a
/// local program and not a web page the user visits: the `Host` must be a loopback name
/// (DNS rebinding makes `evil.example` resolve to 127.0.0.1), and a state-changing request
/// must say `Content-Type: application/json` (a page's form cannot) and come from no `Origin`
/// or this one. With a token, the token is the proof (browsers never add it on their own).
pub(super) async fn refuse_cross_site<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    request: Request,
    next: Next,
) -> Response {
    if state.token.is_some() {
        return next.run(request).await;
    }
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !is_loopback_authority(host) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Host {host:?} is not a loopback name; without http.token the API answers only localhost, 127.0.0.1 and [::1] (set http.token to serve other names)"
            ),
        )
        .into_response();
    }
    let safe = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if let Some(origin) = origin {
            let same = origin
                .strip_prefix("http://")
                .is_some_and(|authority| authority.eq_ignore_ascii_case(host));
            if !same {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("cross-site request from {origin:?} refused: the API takes changes only from local programs (or with http.token)"),
                )
                .into_response();
            }
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json && request.uri().path() != "/notifications/ws" {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a request that changes something must have Content-Type: application/json"
                    .to_owned(),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// `localhost`, `*.localhost`, a 127.0.0.0/8 address or `[::1]`, with or without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    host
                } else {
                    authority
                }
            })
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_pass() {
        for good in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:8080",
            "app.localhost",
        ] {
            assert!(is_loopback_authority(good), "{good}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:80",
            "",
            "localhost.evil.example",
            "[::2]:80",
            "127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }
}
