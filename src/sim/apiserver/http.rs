//! The HTTP face: URL routing, query parameters, `metav1.Status` errors,
//! watch streams and injected faults.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::resize::MIN_MINOR;
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::store::qualified;
use super::store::{ApiError, Event, Part, PatchKind};
use super::{AuditEntry, FaultAction, Shared, lock};

/// Largest request body accepted.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().to_string();
    let response = serve(&shared, req).await;
    shared.audit(AuditEntry {
        method: method.to_string(),
        uri,
        code: response.status().as_u16(),
    });
    response
}

async fn serve(shared: &Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if let Some(action) = shared.take_fault(&method, &path) {
        match action {
            FaultAction::Status(code) => {
                let mut response = error(ApiError::new(code, "injected fault"));
                if code == 429 {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                return response;
            }
            FaultAction::Hang(duration) => tokio::time::sleep(duration).await,
        }
    }
    let query: HashMap<String, String> = Query::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match axum::body::to_bytes(req.into_body(), BODY_LIMIT).await {
        Ok(body) => body,
        Err(e) => return error(ApiError::bad_request(format!("cannot read the body: {e}"))),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let request = Call {
        method,
        query,
        content_type,
        body,
    };
    match route(shared, &segments, request).await {
        Ok(response) => response,
        Err(e) => error(e),
    }
}

struct Call {
    method: Method,
    query: HashMap<String, String>,
    content_type: String,
    body: Bytes,
}

fn ok(code: StatusCode, value: &Value) -> Response {
    (code, axum::Json(value)).into_response()
}

pub fn error(e: ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(e.status())).into_response()
}

fn not_found(path: &[&str]) -> ApiError {
    ApiError::new(
        404,
        format!(
            "the server could not find the requested resource (/{})",
            path.join("/")
        ),
    )
}

async fn route(shared: &Arc<Shared>, path: &[&str], call: Call) -> Result<Response, ApiError> {
    match path {
        ["version"] => Ok(ok(
            StatusCode::OK,
            &json!({
                "major": "1", "minor": shared.config.minor_version.to_string(),
                "gitVersion": format!("v1.{}.0", shared.config.minor_version),
                "gitCommit": "tailor-sim", "gitTreeState": "clean",
                "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2",
                "compiler": "gc", "platform": "linux/amd64",
            }),
        )),
        ["healthz"] | ["readyz"] | ["livez"] => Ok("ok".into_response()),
        ["metrics"] => {
            let text = super::metrics::render(&lock(&shared.state), shared.config.tick);
            Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
        }
        ["api"] => Ok(ok(StatusCode::OK, &resources::core_versions())),
        ["apis"] => Ok(ok(StatusCode::OK, &resources::group_list())),
        ["api", version] => resources::resource_list("", version)
            .map(|v| ok(StatusCode::OK, &v))
            .ok_or_else(|| not_found(path)),
        ["apis", group, version] => resources::resource_list(group, version)
            .map(|v| ok(StatusCode::OK, &v))
            .ok_or_else(|| not_found(path)),
        ["api", version, rest @ ..] => resource_call(shared, "", version, rest, call).await,
        ["apis", group, version, rest @ ..] => {
            resource_call(shared, group, version, rest, call).await
        }
        _ => Err(not_found(path)),
    }
}

/// A request for objects, once the group and version are read.
struct Target<'p> {
    rt: &'static ResourceType,
    /// `None`: all namespaces (or a cluster-scoped type).
    namespace: Option<&'p str>,
    name: Option<&'p str>,
    sub: Option<&'p str>,
}

fn target<'p>(group: &str, version: &str, rest: &[&'p str]) -> Option<Target<'p>> {
    let find = |plural: &str| resources::find(group, version, plural);
    if let ["namespaces", ns, plural, tail @ ..] = rest
        && let Some(rt) = find(plural).filter(|rt| rt.namespaced)
    {
        return match tail {
            [] => Some(Target {
                rt,
                namespace: Some(ns),
                name: None,
                sub: None,
            }),
            [name] => Some(Target {
                rt,
                namespace: Some(ns),
                name: Some(name),
                sub: None,
            }),
            [name, sub] => Some(Target {
                rt,
                namespace: Some(ns),
                name: Some(name),
                sub: Some(sub),
            }),
            _ => None,
        };
    }
    match rest {
        [plural] => Some(Target {
            rt: find(plural)?,
            namespace: None,
            name: None,
            sub: None,
        }),
        [plural, name] => {
            let rt = find(plural).filter(|rt| !rt.namespaced)?;
            Some(Target {
                rt,
                namespace: None,
                name: Some(name),
                sub: None,
            })
        }
        [plural, name, sub] => {
            let rt = find(plural).filter(|rt| !rt.namespaced)?;
            Some(Target {
                rt,
                namespace: None,
                name: Some(name),
                sub: Some(sub),
            })
        }
        _ => None,
    }
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

async fn resource_call(
    shared: &Arc<Shared>,
    group: &str,
    version: &str,
    rest: &[&str],
    call: Call,
) -> Result<Response, ApiError> {
    let Some(t) = target(group, version, rest) else {
        return Err(not_found(rest));
    };
    let rt = t.rt;
    let part = match t.sub {
        Some(sub) if !rt.subresources.contains(&sub) => return Err(not_found(rest)),
        Some("resize") if shared.config.minor_version < MIN_MINOR => {
            return Err(not_found(rest));
        }
        sub => Part::parse(sub).ok_or_else(|| not_found(rest))?,
    };
    authorize(shared, &t, &call)?;
    let ns = t.namespace.unwrap_or("");
    let labels = LabelSelector::parse(call.query.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(call.query.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    match (&call.method, t.name) {
        (&Method::GET, None) => {
            let watch = call
                .query
                .get("watch")
                .is_some_and(|w| w == "true" || w == "1");
            if watch {
                return watch_stream(shared, rt, t.namespace, &call.query, labels, fields);
            }
            let state = lock(&shared.state);
            Ok(ok(
                StatusCode::OK,
                &state.store.list(rt, t.namespace, &labels, &fields),
            ))
        }
        (&Method::POST, None) => {
            if rt.namespaced && t.namespace.is_none() {
                return Err(ApiError::new(405, "create needs a namespace in the URL"));
            }
            let body = parse_json(&call.body)?;
            let created = lock(&shared.state).store.create(rt, ns, body)?;
            Ok(ok(StatusCode::CREATED, &created))
        }
        (&Method::GET, Some(name)) => {
            let object = lock(&shared.state).store.get(rt, ns, name)?;
            Ok(ok(StatusCode::OK, &object))
        }
        (&Method::PUT, Some(name)) => {
            let body = parse_json(&call.body)?;
            let object = lock(&shared.state)
                .store
                .replace(rt, ns, name, part, body)?;
            Ok(ok(StatusCode::OK, &object))
        }
        (&Method::PATCH, Some(name)) => {
            let kind = PatchKind::from_content_type(&call.content_type).ok_or_else(|| {
                ApiError::new(
                    415,
                    format!(
                        "the body of the request was in an unknown format: {}",
                        call.content_type
                    ),
                )
            })?;
            let (object, created) = lock(&shared.state)
                .store
                .patch(rt, ns, name, part, kind, &call.body)?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(ok(code, &object))
        }
        (&Method::DELETE, Some(name)) => {
            let object = lock(&shared.state).store.delete(rt, ns, name)?;
            Ok(ok(StatusCode::OK, &object))
        }
        _ => Err(ApiError::new(
            405,
            format!("{} is not allowed here", call.method),
        )),
    }
}

/// The RBAC verb of a request, as the real authorizer names it.
fn verb(call: &Call, named: bool) -> &'static str {
    let watch = call
        .query
        .get("watch")
        .is_some_and(|w| w == "true" || w == "1");
    match (&call.method, named) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "unknown",
    }
}

/// 403 when the config's RBAC refuses the request, with the message and
/// `details` the real API server sends.
fn authorize(shared: &Shared, t: &Target<'_>, call: &Call) -> Result<(), ApiError> {
    let verb = verb(call, t.name.is_some());
    let resource = match t.sub {
        Some(sub) => format!("{}/{sub}", t.rt.plural),
        None => t.rt.plural.to_string(),
    };
    let denied = shared.config.rbac_deny.iter().any(|d| {
        (d.verb == "*" || d.verb == verb)
            && d.group == t.rt.group
            && d.resource == resource
            && d.namespace
                .as_deref()
                .is_none_or(|ns| t.namespace == Some(ns))
    });
    if !denied {
        return Ok(());
    }
    let subject = match t.name {
        Some(name) => format!("{} {name:?}", qualified(t.rt)),
        None => qualified(t.rt),
    };
    let scope = match t.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".into(),
    };
    let mut e = ApiError::new(
        403,
        format!(
            "{subject} is forbidden: User {:?} cannot {verb} resource {resource:?} in API group {:?} {scope}",
            shared.config.user, t.rt.group
        ),
    );
    let mut details = json!({"group": t.rt.group, "kind": t.rt.plural});
    if let Some(name) = t.name {
        details["name"] = json!(name);
    }
    e.details = Some(details);
    Err(e)
}

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn matches(
    event: &Event,
    rt: &ResourceType,
    ns: Option<&str>,
    l: &LabelSelector,
    f: &FieldSelector,
) -> bool {
    event.type_id == rt.id()
        && ns.is_none_or(|ns| ns == event.namespace)
        && l.matches_object(&event.object)
        && f.matches(&event.object)
}

/// A chunked stream of JSON lines: the history after `resourceVersion`,
/// then live events, with BOOKMARKs, until `timeoutSeconds` or shutdown.
fn watch_stream(
    shared: &Arc<Shared>,
    rt: &'static ResourceType,
    ns: Option<&str>,
    query: &HashMap<String, String>,
    labels: LabelSelector,
    fields: FieldSelector,
) -> Result<Response, ApiError> {
    let since = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true" || b == "1");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let ns = ns.map(str::to_string);
    let (replay, mut rx, mut last_rv) = {
        let state = lock(&shared.state);
        let rv = state.store.resource_version();
        match state.store.watch_from(rt, ns.as_deref(), since) {
            Ok((events, rx)) => (Ok(events), Some(rx), rv),
            Err(e) => (Err(e), None, rv),
        }
    };
    let (mut tx, body) = futures::channel::mpsc::channel::<Result<Bytes, Infallible>>(64);
    let bookmark_every = shared.config.bookmark_interval;
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        let events = match replay {
            Ok(events) => events,
            Err(e) => {
                let _ = tx.send(Ok(watch_line("ERROR", &e.status()))).await;
                return;
            }
        };
        for event in events {
            if matches(&event, rt, ns.as_deref(), &labels, &fields)
                && tx
                    .send(Ok(watch_line(event.kind, &event.object)))
                    .await
                    .is_err()
            {
                return;
            }
        }
        let Some(rx) = rx.as_mut() else { return };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        loop {
            let line = tokio::select! {
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {
                    if !bookmarks { continue; }
                    let object = json!({
                        "kind": rt.kind, "apiVersion": rt.api_version(),
                        "metadata": {"resourceVersion": last_rv.to_string()},
                    });
                    watch_line("BOOKMARK", &object)
                }
                received = rx.recv() => match received {
                    Ok(event) => {
                        if event.type_id == rt.id() {
                            last_rv = last_rv.max(event.rv);
                        }
                        if !matches(&event, rt, ns.as_deref(), &labels, &fields) { continue; }
                        watch_line(event.kind, &event.object)
                    }
                    Err(RecvError::Lagged(_)) => {
                        let e = ApiError::new(410, "the watcher fell behind; list again");
                        let _ = tx.send(Ok(watch_line("ERROR", &e.status()))).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}
