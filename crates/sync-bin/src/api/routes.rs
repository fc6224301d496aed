//! The one table of routes, and the OpenAPI document made from it.

use axum::Json;
use axum::response::{IntoResponse, Response};

/// One route: method, path (axum syntax), what it does.
pub(crate) struct RouteDoc {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) summary: &'static str,
}

/// Every route the daemon serves (the daemon test requests each one and checks it is routed).
pub(crate) const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/healthz",
        summary: "The process is up (no authentication).",
    },
    RouteDoc {
        method: "get",
        path: "/readyz",
        summary: "The database answers (no authentication).",
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics.",
    },
    RouteDoc {
        method: "get",
        path: "/openapi.json",
        summary: "This document.",
    },
    RouteDoc {
        method: "get",
        path: "/api/users",
        summary: "List users.",
    },
    RouteDoc {
        method: "post",
        path: "/api/users",
        summary: "Add a user.",
    },
    RouteDoc {
        method: "get",
        path: "/api/users/{id}",
        summary: "One user.",
    },
    RouteDoc {
        method: "patch",
        path: "/api/users/{id}",
        summary: "Change a user's email, name, enabled flag or capabilities.",
    },
    RouteDoc {
        method: "delete",
        path: "/api/users/{id}",
        summary: "Delete a user with the mailboxes it owns.",
    },
    RouteDoc {
        method: "get",
        path: "/api/users/{id}/login-notices",
        summary: "Credential notices the user has not seen.",
    },
    RouteDoc {
        method: "post",
        path: "/api/users/{id}/login-notices/shown",
        summary: "Take the notices to show at login (each is returned once).",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes",
        summary: "List mailboxes.",
    },
    RouteDoc {
        method: "post",
        path: "/api/mailboxes",
        summary: "Add a mailbox.",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes/{id}",
        summary: "A mailbox's settings (never its password), state and folders.",
    },
    RouteDoc {
        method: "patch",
        path: "/api/mailboxes/{id}",
        summary: "Change settings; another host or login needs reset=true, which deletes its mail.",
    },
    RouteDoc {
        method: "delete",
        path: "/api/mailboxes/{id}",
        summary: "Delete a mailbox and its mail.",
    },
    RouteDoc {
        method: "post",
        path: "/api/mailboxes/{id}/check",
        summary: "Connect and log in; the server's capabilities.",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes/{id}/folders",
        summary: "The folder tree with switches and counts.",
    },
    RouteDoc {
        method: "patch",
        path: "/api/mailboxes/{id}/folders",
        summary: "Switch folders on or off; the folders are synced at once.",
    },
    RouteDoc {
        method: "post",
        path: "/api/mailboxes/{id}/sync",
        summary: "Sync now: never refused; 202 with who took it, or with wait=SECONDS 200 and the finished run.",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes/{id}/runs",
        summary: "The mailbox's latest sync runs, newest first.",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes/{id}/emails",
        summary: "Emails of a mailbox, or of one folder (?folder=), newest first.",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes/{id}/dropped-changes",
        summary: "The host's flag changes the server's flags overrode (newest first, 30 days).",
    },
    RouteDoc {
        method: "get",
        path: "/api/emails/{id}",
        summary: "One email with its bodies, attachments and folders.",
    },
    RouteDoc {
        method: "patch",
        path: "/api/emails/{id}/flags",
        summary: "Set or clear flags; pushed to the server by the next sync.",
    },
    RouteDoc {
        method: "get",
        path: "/notifications/ws",
        summary: "WebSocket of credential notices (?token= a push token).",
    },
];

pub(super) async fn openapi() -> Response {
    Json(openapi_document()).into_response()
}

/// The OpenAPI 3.1 document, from [`ROUTES`].
pub(crate) fn openapi_document() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| serde_json::json!({}));
        let mut operation = serde_json::json!({
            "summary": route.summary,
            "responses": {"200": {"description": "OK"}, "401": {"description": "A token is configured and the request has none or a wrong one"}},
        });
        if route.path.contains("{id}") {
            operation["parameters"] = serde_json::json!([
                {"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}
            ]);
        }
        if let Some(object) = entry.as_object_mut() {
            object.insert(route.method.to_owned(), operation);
        }
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "imap-sync", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    })
}
