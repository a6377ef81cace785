//! Documents the installed plugins' declared parameters in `/openapi.json`: a middleware that
//! post-processes the generated document (whatever builds it), so the form schemas of the
//! `/segment/*` operations also list what the current plugin generation reads: each declared
//! parameter (type, default, which plugin), the `filters` field and the installed formats.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::plugins::{ParamType, PluginDescription, PluginKind};
use crate::state::AppState;

/// Largest OpenAPI document the middleware rewrites (it is tens of kilobytes).
const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// On `GET /openapi.json`, adds the plugin parameters to the document; other requests pass.
pub async fn document(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.uri().path() != "/openapi.json" {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_DOCUMENT_BYTES).await else {
        return (parts, Body::empty()).into_response();
    };
    let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) else {
        return (parts, Body::from(bytes)).into_response();
    };
    add_plugin_parameters(&mut doc, &state.plugins.list());
    let mut out = Json(doc).into_response();
    *out.status_mut() = parts.status;
    out
}

/// Adds to every multipart form schema of a `/segment/*` operation: one property per declared
/// parameter of the installed plugins (a property the form already has gets a note instead),
/// `filters` (the per-request filter names) and the installed formats on `output_format`.
pub fn add_plugin_parameters(doc: &mut Value, plugins: &[PluginDescription]) {
    let mut schemas: Vec<String> = Vec::new();
    let mut inline: Vec<(String, String)> = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            if !path.starts_with("/segment/") {
                continue;
            }
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                let schema = &op["requestBody"]["content"]["multipart/form-data"]["schema"];
                match schema.get("$ref").and_then(Value::as_str) {
                    Some(r) => {
                        if let Some(name) = r.strip_prefix("#/components/schemas/") {
                            schemas.push(name.to_string());
                        }
                    }
                    None if schema.is_object() => inline.push((path.clone(), method.clone())),
                    None => {}
                }
            }
        }
    }
    schemas.sort();
    schemas.dedup();
    for name in schemas {
        if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
            document_form(schema, plugins);
        }
    }
    for (path, method) in inline {
        if let Some(op) = doc.get_mut("paths").and_then(|p| p.get_mut(&path)) {
            if let Some(schema) = op
                .get_mut(&method)
                .and_then(|o| o.pointer_mut("/requestBody/content/multipart~1form-data/schema"))
            {
                document_form(schema, plugins);
            }
        }
    }
}

/// Adds the plugin properties to one form schema (an object schema).
fn document_form(schema: &mut Value, plugins: &[PluginDescription]) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let properties = obj
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(properties) = properties.as_object_mut() else {
        return;
    };
    for plugin in plugins {
        let kind = match plugin.kind {
            PluginKind::Formatter => "formatter",
            PluginKind::Filter => "filter",
        };
        for p in &plugin.params {
            let note = format!(
                "Read by the {kind} plugin '{}'{}: {}",
                plugin.name,
                p.default
                    .as_deref()
                    .map(|d| format!(" (default {d})"))
                    .unwrap_or_default(),
                p.description
            );
            match properties.get_mut(&p.name) {
                Some(existing) => {
                    let text = existing
                        .get("description")
                        .and_then(Value::as_str)
                        .map(|d| format!("{d}\n\n{note}"))
                        .unwrap_or(note);
                    if let Some(e) = existing.as_object_mut() {
                        e.insert("description".into(), Value::String(text));
                    }
                }
                None => {
                    let ty = match p.ty {
                        ParamType::String => "string",
                        ParamType::Integer => "integer",
                        ParamType::Number => "number",
                        ParamType::Boolean => "boolean",
                    };
                    properties.insert(
                        p.name.clone(),
                        json!({ "type": ty, "nullable": true, "description": note }),
                    );
                }
            }
        }
    }
    let filters: Vec<&str> = plugins
        .iter()
        .filter(|p| p.kind == PluginKind::Filter)
        .map(|p| p.name.as_str())
        .collect();
    properties.entry("filters").or_insert_with(|| {
        json!({
            "type": "string",
            "nullable": true,
            "description": format!(
                "Comma-separated filters to run after the configured chain, in order (installed: {}). Refused when plugins.allow_request_filters is false.",
                filters.join(", ")
            ),
        })
    });
    let formats: Vec<&str> = plugins
        .iter()
        .filter(|p| p.kind == PluginKind::Formatter)
        .map(|p| p.name.as_str())
        .collect();
    if let Some(Value::Object(f)) = properties.get_mut("output_format") {
        let text = f
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        f.insert(
            "description".into(),
            Value::String(
                format!("{text} Installed formats: {}.", formats.join(", "))
                    .trim()
                    .to_string(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::ParamSpec;

    fn plugin(name: &str, kind: PluginKind, params: Vec<ParamSpec>) -> PluginDescription {
        PluginDescription {
            name: name.into(),
            kind,
            wit_version: "0.2.0".into(),
            version: Some("1.0.0".into()),
            file: format!("{name}.wasm"),
            sha256: String::new(),
            description: String::new(),
            params,
            in_chain: None,
        }
    }

    #[test]
    fn declared_parameters_reach_the_segment_forms() {
        let mut doc = json!({
            "paths": {
                "/segment/predict": {"post": {"requestBody": {"content": {"multipart/form-data": {
                    "schema": {"$ref": "#/components/schemas/PredictForm"}}}}}},
                "/segment/text": {"post": {"requestBody": {"content": {"multipart/form-data": {
                    "schema": {"type": "object", "properties": {}}}}}}},
                "/plugins": {"get": {}}
            },
            "components": {"schemas": {"PredictForm": {"type": "object", "properties": {
                "min_size": {"type": "integer", "description": "Smallest mask."},
                "output_format": {"type": "string", "description": "Format."}
            }}}}
        });
        let spec = |name: &str, ty| ParamSpec {
            name: name.into(),
            ty,
            default: Some("0".into()),
            description: "What it does".into(),
        };
        let plugins = [
            plugin(
                "size",
                PluginKind::Filter,
                vec![spec("min_size", ParamType::Integer)],
            ),
            plugin(
                "compact",
                PluginKind::Filter,
                vec![spec("min_score", ParamType::Number)],
            ),
            plugin("kml", PluginKind::Formatter, vec![]),
        ];
        add_plugin_parameters(&mut doc, &plugins);
        let form = &doc["components"]["schemas"]["PredictForm"]["properties"];
        assert_eq!(form["min_score"]["type"], "number");
        assert!(form["min_score"]["description"]
            .as_str()
            .unwrap()
            .contains("'compact'"));
        let min_size = form["min_size"]["description"].as_str().unwrap();
        assert!(
            min_size.starts_with("Smallest mask.") && min_size.contains("'size'"),
            "{min_size}"
        );
        assert!(form["filters"]["description"]
            .as_str()
            .unwrap()
            .contains("size, compact"));
        assert!(form["output_format"]["description"]
            .as_str()
            .unwrap()
            .contains("kml"));
        let text = &doc["paths"]["/segment/text"]["post"]["requestBody"]["content"]
            ["multipart/form-data"]["schema"]["properties"];
        assert_eq!(text["min_score"]["type"], "number", "{doc}");
    }
}
