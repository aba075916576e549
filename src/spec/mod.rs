//! Spec files: the machine-readable transcription of the vendors' documents.
//!
//! Files enter as YAML (or JSON) text, leave as a checked [`SpecSet`]. Nothing here does network
//! I/O; file reading is confined to [`load_dir`].

mod error;
mod load;
mod model;
mod wire;

pub use error::{Problem, SpecError};
pub use load::{
    builtin, load_dir, load_embedded, load_files, read_source, LoadedApi, SourceFile, SpecSet,
    EMBEDDED,
};
pub use model::*;
pub use wire::{Method, Params, ResponseFormat, SignatureMethod};

/// The JSON schema of API spec files, as written to `specs/schema.json`.
pub fn schema_json() -> String {
    let api = schemars::schema_for!(ApiSpec);
    let family = schemars::schema_for!(FamilySpec);
    let doc = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "apiconform spec files",
        "description": "Generated from src/spec/model.rs by `apiconform specs schema`; do not edit by hand.",
        "oneOf": [ {"$ref": "#/$defs/ApiSpec"}, {"$ref": "#/$defs/FamilySpec"} ],
        "$defs": merge_defs(&[("ApiSpec", api), ("FamilySpec", family)]),
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("schema serialises");
    s.push('\n');
    s
}

fn merge_defs(roots: &[(&str, schemars::Schema)]) -> serde_json::Value {
    let mut defs = serde_json::Map::new();
    for (name, schema) in roots {
        let mut v = schema.clone().to_value();
        if let Some(obj) = v.as_object_mut() {
            if let Some(serde_json::Value::Object(inner)) = obj.remove("$defs") {
                for (k, d) in inner {
                    defs.insert(k, d);
                }
            }
            obj.remove("$schema");
        }
        defs.insert((*name).to_string(), v);
    }
    serde_json::Value::Object(defs)
}
