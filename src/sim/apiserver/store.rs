//! The object store and the API semantics tailor relies on: resource
//! versions, generations, conflicts, patches, subresources and the event
//! history watches replay. Pure bookkeeping under the server's lock; no I/O.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use crate::units::{Bytes, MilliCores};

/// An API error, sent as a `metav1.Status`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status (`name`, `group`, `kind`), when the real
    /// server sends them.
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason_for(code),
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(404, format!("{} {name:?} not found", qualified(rt)))
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(422, message)
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message,
            "reason": self.reason, "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// The reason the real API server gives with each status code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// `deployments.apps`, as the real server names types in messages.
pub fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.plural.to_string()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    }
}

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The object: `status` in the body is ignored.
    Main,
    /// `/status`: only `status` changes.
    Status,
    /// `pods/{name}/resize`: only the containers' `resources` change.
    Resize,
}

impl Part {
    pub fn parse(sub: Option<&str>) -> Option<Part> {
        match sub {
            None => Some(Part::Main),
            Some("status") => Some(Part::Status),
            Some("resize") => Some(Part::Resize),
            Some(_) => None,
        }
    }
}

/// The patch formats of the `Content-Type` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`: a merge patch whose
    /// `containers`-like lists merge by `name`.
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply, done as a
    /// strategic merge that creates a missing object.
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Option<PatchKind> {
        let base = content_type.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// A watch event as kept in the history and sent to watchers.
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub type_id: String,
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub object: Value,
}

/// The events a watch replays, and the receiver of the live ones.
pub type Replay = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

/// (type id, namespace or "", name).
pub type Key = (String, String, String);

/// Lists whose items a strategic merge patch merges by `name`.
const MERGE_BY_NAME: &[&str] = &[
    "containers",
    "initContainers",
    "ephemeralContainers",
    "volumes",
    "env",
];

/// The objects and their history.
pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Every event after this resource version is still in `history`.
    floor: u64,
    next_uid: u64,
    seed: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Store {
    pub fn new(seed: u64, history_limit: usize) -> Store {
        let (tx, _) = broadcast::channel(4096);
        Store {
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            floor: 1,
            next_uid: 0,
            seed,
            tx,
        }
    }

    /// The latest resource version.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn lookup(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(rt, ns, name))
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.lookup(rt, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// Objects of a type, in one namespace or all (`None`), in key order.
    pub fn iter<'s>(
        &'s self,
        rt: &ResourceType,
        ns: Option<&'s str>,
    ) -> impl Iterator<Item = &'s Value> + 's {
        let id = rt.id();
        self.objects
            .iter()
            .filter(move |((t, n, _), _)| *t == id && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v)
    }

    /// `{kind: XList, apiVersion, metadata: {resourceVersion}, items}`.
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Value {
        let items: Vec<Value> = self
            .iter(rt, ns)
            .filter(|o| labels.matches_object(o) && fields.matches(o))
            .cloned()
            .collect();
        json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": items,
        })
    }

    /// POST: 201 with the stored object, 409 AlreadyExists.
    pub fn create(&mut self, rt: &ResourceType, ns: &str, body: Value) -> Result<Value, ApiError> {
        let mut object = self.check_body(rt, ns, body)?;
        let name = match name_of(&object) {
            Some(name) => name,
            None => {
                let prefix = object
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::invalid("metadata.name: Required value"))?
                    .to_string();
                let name = format!("{prefix}{}", self.suffix());
                set(&mut object, "/metadata/name", json!(name));
                name
            }
        };
        if self.lookup(rt, ns, &name).is_some() {
            return Err(ApiError {
                code: 409,
                reason: "AlreadyExists",
                message: format!("{} {name:?} already exists", qualified(rt)),
                details: None,
            });
        }
        validate(&object)?;
        let uid = self.uid();
        let meta = metadata_mut(&mut object);
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if object.get("spec").is_some() {
            set(&mut object, "/metadata/generation", json!(1));
        }
        Ok(self.commit(rt, ns, &name, object, "ADDED"))
    }

    /// PUT: 409 Conflict when the body's resourceVersion is stale.
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        part: Part,
        body: Value,
    ) -> Result<Value, ApiError> {
        let body = self.check_body(rt, ns, body)?;
        if name_of(&body).as_deref() != Some(name) {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        let old = self.get(rt, ns, name)?;
        check_version(rt, name, &old, &body)?;
        let object = merge_part(&old, body, part);
        if part == Part::Resize {
            super::resize::validate(name, &old, &object)?;
        }
        self.update(rt, ns, name, &old, object)
    }

    /// PATCH in any of the four formats; `Apply` creates a missing object.
    /// Returns the object and whether it was created.
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        part: Part,
        kind: PatchKind,
        body: &[u8],
    ) -> Result<(Value, bool), ApiError> {
        let old = match self.lookup(rt, ns, name) {
            Some(old) => old.clone(),
            None if kind == PatchKind::Apply && part == Part::Main => {
                let mut object = parse_apply(body)?;
                if name_of(&object).is_none() {
                    set(&mut object, "/metadata/name", json!(name));
                }
                return self.create(rt, ns, object).map(|o| (o, true));
            }
            None => return Err(ApiError::not_found(rt, name)),
        };
        let mut patched = old.clone();
        match kind {
            PatchKind::Json => {
                let patch: json_patch::Patch = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
                json_patch::patch(&mut patched, &patch).map_err(|e| {
                    ApiError::invalid(format!("the JSON patch could not be applied: {e}"))
                })?;
            }
            PatchKind::Merge => {
                let patch: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid merge patch: {e}")))?;
                json_patch::merge(&mut patched, &patch);
            }
            PatchKind::Strategic => {
                let patch: Value = serde_json::from_slice(body).map_err(|e| {
                    ApiError::bad_request(format!("invalid strategic merge patch: {e}"))
                })?;
                strategic_merge(&mut patched, &patch);
            }
            PatchKind::Apply => {
                let patch = parse_apply(body)?;
                strategic_merge(&mut patched, &patch);
            }
        }
        if !patched.is_object() {
            return Err(ApiError::bad_request("the patch did not leave an object"));
        }
        check_version(rt, name, &old, &patched)?;
        let object = merge_part(&old, patched, part);
        if part == Part::Resize {
            super::resize::validate(name, &old, &object)?;
        }
        self.update(rt, ns, name, &old, object).map(|o| (o, false))
    }

    /// DELETE: the object as it was, with a new resource version.
    pub fn delete(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        let mut object = self
            .objects
            .remove(&key(rt, ns, name))
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        self.rv += 1;
        set(
            &mut object,
            "/metadata/resourceVersion",
            json!(self.rv.to_string()),
        );
        self.record(rt, ns, "DELETED", &object);
        Ok(object)
    }

    /// Writes an object as the controllers do: no version check, status
    /// kept as given, generation bumped on a spec change.
    pub fn put(&mut self, rt: &ResourceType, ns: &str, object: Value) -> Result<Value, ApiError> {
        let name = name_of(&object).ok_or_else(|| ApiError::invalid("metadata.name missing"))?;
        match self.lookup(rt, ns, &name).cloned() {
            Some(old) => {
                if old == object {
                    return Ok(old);
                }
                self.update(rt, ns, &name, &old, object)
            }
            None => self.create(rt, ns, object),
        }
    }

    /// Events after `since` for a type, and a receiver for later ones, taken
    /// together so none falls between. `None` replays the current objects
    /// as ADDED. A version older than the history is 410 Expired.
    pub fn watch_from(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        since: Option<u64>,
    ) -> Result<Replay, ApiError> {
        let rx = self.tx.subscribe();
        let id = rt.id();
        let events = match since {
            None => self
                .iter(rt, ns)
                .map(|o| {
                    Arc::new(Event {
                        rv: self.rv,
                        type_id: id.clone(),
                        namespace: namespace_of(o),
                        kind: "ADDED",
                        object: o.clone(),
                    })
                })
                .collect(),
            Some(since) if since < self.floor => {
                return Err(ApiError::new(
                    410,
                    format!(
                        "too old resource version: {since} ({})",
                        self.floor.saturating_add(1)
                    ),
                ));
            }
            Some(since) => self
                .history
                .iter()
                .filter(|e| e.rv > since && e.type_id == id)
                .filter(|e| ns.is_none_or(|ns| ns == e.namespace))
                .cloned()
                .collect(),
        };
        Ok((events, rx))
    }

    fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        old: &Value,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        validate(&object)?;
        // Identity fields are the server's, whatever the body says.
        for field in ["uid", "creationTimestamp", "name", "namespace"] {
            match old.pointer(&format!("/metadata/{field}")) {
                Some(v) => set(&mut object, &format!("/metadata/{field}"), v.clone()),
                None => {
                    metadata_mut(&mut object).remove(field);
                }
            }
        }
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if object.get("spec").is_some() || generation > 0 {
            let bumped = if old.get("spec") != object.get("spec") {
                generation + 1
            } else {
                generation.max(1)
            };
            set(&mut object, "/metadata/generation", json!(bumped));
        }
        if *old == object {
            return Ok(object);
        }
        Ok(self.commit(rt, ns, name, object, "MODIFIED"))
    }

    fn commit(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut object: Value,
        kind: &'static str,
    ) -> Value {
        self.rv += 1;
        set(
            &mut object,
            "/metadata/resourceVersion",
            json!(self.rv.to_string()),
        );
        self.objects.insert(key(rt, ns, name), object.clone());
        self.record(rt, ns, kind, &object);
        object
    }

    fn record(&mut self, rt: &ResourceType, ns: &str, kind: &'static str, object: &Value) {
        let event = Arc::new(Event {
            rv: self.rv,
            type_id: rt.id(),
            namespace: ns.to_string(),
            kind,
            object: object.clone(),
        });
        self.history.push_back(Arc::clone(&event));
        while self.history.len() > self.history_limit {
            if let Some(evicted) = self.history.pop_front() {
                self.floor = evicted.rv;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(event);
    }

    /// Sets kind, apiVersion and namespace; rejects a body that names
    /// another type or namespace.
    fn check_body(&self, rt: &ResourceType, ns: &str, body: Value) -> Result<Value, ApiError> {
        let Value::Object(mut map) = body else {
            return Err(ApiError::bad_request("the body is not a JSON object"));
        };
        let api_version = rt.api_version();
        for (field, want) in [("kind", rt.kind), ("apiVersion", api_version.as_str())] {
            match map.get(field).and_then(Value::as_str) {
                Some(got) if got != want => {
                    return Err(ApiError::bad_request(format!(
                        "{field} {got:?} does not match the URL's {want:?}"
                    )));
                }
                _ => {
                    map.insert(field.into(), json!(want));
                }
            }
        }
        let mut object = Value::Object(map);
        let body_ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        if rt.namespaced {
            if body_ns.as_deref().is_some_and(|b| !b.is_empty() && b != ns) {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            set(&mut object, "/metadata/namespace", json!(ns));
        } else {
            metadata_mut(&mut object).remove("namespace");
        }
        Ok(object)
    }

    fn uid(&mut self) -> String {
        self.next_uid += 1;
        let a = mix(self.seed ^ self.next_uid);
        let b = mix(a ^ 0x9e37_79b9_7f4a_7c15);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    /// Five characters for `generateName`, as the real server appends.
    pub fn suffix(&mut self) -> String {
        self.next_uid += 1;
        safe_encode(mix(self.seed ^ self.next_uid.rotate_left(17)), 5)
    }
}

/// splitmix64: cheap, deterministic, well mixed.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The alphabet Kubernetes uses for generated names and template hashes
/// (no vowels, no look-alikes).
pub fn safe_encode(mut x: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::with_capacity(len);
    for _ in 0..len {
        out.push(char::from(ALPHABET[(x % ALPHABET.len() as u64) as usize]));
        x /= ALPHABET.len() as u64;
    }
    out
}

fn key(rt: &ResourceType, ns: &str, name: &str) -> Key {
    let ns = if rt.namespaced { ns } else { "" };
    (rt.id(), ns.to_string(), name.to_string())
}

pub fn name_of(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub fn namespace_of(object: &Value) -> String {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `object.metadata` as a map, created when missing.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    ensure_object(ensure_object(object).entry("metadata").or_insert(json!({})))
}

fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// Sets `/a/b/c`, creating objects on the way.
pub fn set(object: &mut Value, pointer: &str, value: Value) {
    let mut target = object;
    let mut parts = pointer.split('/').skip(1).peekable();
    while let Some(part) = parts.next() {
        let map = ensure_object(target);
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        target = map.entry(part.to_string()).or_insert(json!({}));
    }
}

fn check_version(rt: &ResourceType, name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
    let given = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let current = old
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    match given {
        Some(given) if Some(given) != current => Err(ApiError::new(
            409,
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
                 please apply your changes to the latest version and try again",
                qualified(rt)
            ),
        )),
        _ => Ok(()),
    }
}

/// What a write to `part` keeps of the new body and of the old object.
fn merge_part(old: &Value, mut new: Value, part: Part) -> Value {
    match part {
        Part::Main => {
            match old.get("status") {
                Some(status) => set(&mut new, "/status", status.clone()),
                None => {
                    if let Value::Object(map) = &mut new {
                        map.remove("status");
                    }
                }
            }
            new
        }
        Part::Status => {
            let mut object = old.clone();
            match new.get("status") {
                Some(status) => set(&mut object, "/status", status.clone()),
                None => {
                    if let Value::Object(map) = &mut object {
                        map.remove("status");
                    }
                }
            }
            object
        }
        Part::Resize => {
            let mut object = old.clone();
            let wanted = new
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(containers) = object
                .pointer_mut("/spec/containers")
                .and_then(Value::as_array_mut)
            {
                for c in containers.iter_mut() {
                    let name = c.get("name").cloned();
                    let given = wanted.iter().find(|w| w.get("name") == name.as_ref());
                    if let Some(resources) = given.and_then(|w| w.get("resources")) {
                        set(c, "/resources", resources.clone());
                    }
                }
            }
            object
        }
    }
}

fn parse_apply(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the apply patch is not UTF-8"))?;
    serde_yaml_ng::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("invalid apply patch: {e}")))
}

/// A merge patch whose `containers`-like lists merge item by item on `name`.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    let map = ensure_object(target);
    for (k, v) in patch_map {
        if v.is_null() {
            map.remove(k);
            continue;
        }
        let by_name = MERGE_BY_NAME.contains(&k.as_str());
        match (map.get_mut(k), v) {
            (Some(Value::Array(items)), Value::Array(patches)) if by_name => {
                for p in patches {
                    let name = p.get("name");
                    match items
                        .iter_mut()
                        .find(|i| name.is_some() && i.get("name") == name)
                    {
                        Some(item) => strategic_merge(item, p),
                        None => items.push(p.clone()),
                    }
                }
            }
            (Some(existing), Value::Object(_)) => strategic_merge(existing, v),
            _ => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, v);
                map.insert(k.clone(), fresh);
            }
        }
    }
}

/// The check tailor's patches can trip: a container request above its
/// limit is rejected as the real server does (422 Invalid).
fn validate(object: &Value) -> Result<(), ApiError> {
    let pointers = ["/spec/containers", "/spec/template/spec/containers"];
    for pointer in pointers {
        let Some(containers) = object.pointer(pointer).and_then(Value::as_array) else {
            continue;
        };
        for c in containers {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            for resource in ["cpu", "memory"] {
                let get = |which: &str| {
                    c.pointer(&format!("/resources/{which}/{resource}"))
                        .map(quantity_text)
                };
                let (Some(request), Some(limit)) = (get("requests"), get("limits")) else {
                    continue;
                };
                let bad = |q: &str| {
                    ApiError::invalid(format!(
                        "{pointer}[{name}].resources: Invalid value: {q:?}: must be a quantity"
                    ))
                };
                let above = if resource == "cpu" {
                    let r: MilliCores = request.parse().map_err(|_| bad(&request))?;
                    let l: MilliCores = limit.parse().map_err(|_| bad(&limit))?;
                    r > l
                } else {
                    let r: Bytes = request.parse().map_err(|_| bad(&request))?;
                    let l: Bytes = limit.parse().map_err(|_| bad(&limit))?;
                    r > l
                };
                if above {
                    return Err(ApiError::invalid(format!(
                        "{pointer}[{name}].resources.requests: Invalid value: {request:?}: \
                         must be less than or equal to {resource} limit of {limit}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// A quantity as text, whether the JSON has it as a string or a number.
pub fn quantity_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::resources::find;
    use super::*;

    fn pods() -> &'static ResourceType {
        find("", "v1", "pods").expect("pods")
    }

    fn pod(name: &str, cpu_request: &str, cpu_limit: &str) -> Value {
        json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "resources": {
                "requests": {"cpu": cpu_request}, "limits": {"cpu": cpu_limit}}}]},
        })
    }

    #[test]
    fn writes_bump_versions_and_generations() {
        let mut store = Store::new(1, 100);
        let created = store
            .create(pods(), "ns", pod("a", "100m", "1"))
            .expect("create");
        assert_eq!(created["metadata"]["generation"], 1);
        assert_eq!(created["metadata"]["namespace"], "ns");
        let rv: u64 = created["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("rv");
        let err = store
            .create(pods(), "ns", pod("a", "100m", "1"))
            .expect_err("dup");
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));

        let mut body = created.clone();
        body["status"] = json!({"phase": "Running"});
        body["metadata"]["labels"] = json!({"app": "a"});
        let updated = store
            .replace(pods(), "ns", "a", Part::Main, body.clone())
            .expect("replace");
        assert!(
            updated.get("status").is_none(),
            "main resource ignores status"
        );
        assert_eq!(updated["metadata"]["generation"], 1, "spec unchanged");
        let stale = store
            .replace(pods(), "ns", "a", Part::Status, body)
            .expect_err("stale");
        assert_eq!((stale.code, stale.reason), (409, "Conflict"));

        let (patched, _) = store
            .patch(
                pods(),
                "ns",
                "a",
                Part::Main,
                PatchKind::Strategic,
                br#"{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"200m"}}}]}}"#,
            )
            .expect("patch");
        assert_eq!(patched["metadata"]["generation"], 2);
        assert_eq!(
            patched["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "1"
        );
        let (events, _) = store.watch_from(pods(), None, Some(rv)).expect("watch");
        let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["MODIFIED", "MODIFIED"]);
    }

    #[test]
    fn failed_json_patch_test_changes_nothing() {
        let mut store = Store::new(1, 100);
        store
            .create(pods(), "ns", pod("a", "100m", "1"))
            .expect("create");
        let before = store.get(pods(), "ns", "a").expect("get");
        let patch = br#"[{"op":"replace","path":"/spec/containers/0/resources/requests/cpu","value":"300m"},
            {"op":"test","path":"/spec/containers/0/resources/limits/cpu","value":"2"}]"#;
        let err = store
            .patch(pods(), "ns", "a", Part::Main, PatchKind::Json, patch)
            .expect_err("test fails");
        assert_eq!((err.code, err.reason), (422, "Invalid"));
        assert_eq!(store.get(pods(), "ns", "a").expect("get"), before);
    }

    #[test]
    fn request_above_limit_is_invalid() {
        let mut store = Store::new(1, 100);
        let err = store
            .create(pods(), "ns", pod("a", "2", "1"))
            .expect_err("invalid");
        assert_eq!(err.code, 422);
    }

    #[test]
    fn resize_changes_only_resources() {
        let mut store = Store::new(1, 100);
        store
            .create(pods(), "ns", pod("a", "100m", "1"))
            .expect("create");
        let patch = br#"{"metadata":{"labels":{"x":"y"}},"spec":{"containers":[{"name":"app","image":"other","resources":{"requests":{"cpu":"300m"},"limits":{"cpu":"1"}}}]}}"#;
        let (pod, _) = store
            .patch(pods(), "ns", "a", Part::Resize, PatchKind::Strategic, patch)
            .expect("resize");
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "300m"
        );
        assert!(pod["spec"]["containers"][0].get("image").is_none());
        assert!(pod.pointer("/metadata/labels").is_none());
    }

    #[test]
    fn old_versions_expire() {
        let mut store = Store::new(1, 2);
        for name in ["a", "b", "c", "d"] {
            store
                .create(pods(), "ns", pod(name, "100m", "1"))
                .expect("create");
        }
        let err = store
            .watch_from(pods(), None, Some(2))
            .expect_err("expired");
        assert_eq!((err.code, err.reason), (410, "Expired"));
        let (events, _) = store
            .watch_from(pods(), None, Some(store.resource_version() - 1))
            .expect("recent");
        assert_eq!(events.len(), 1);
    }
}
