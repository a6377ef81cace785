//! Test formatter `count-v0-1`, built against `samgeo:plugin@0.1.0` with the WIT bindings
//! directly: it proves that components of the previous WIT version keep loading and serving
//! next to 0.2.0 ones (it is the 0.1 template, frozen).

// The logic lives in plain functions over plain types, so `cargo test` runs it natively.

/// The response body for a request carrying `n` masks.
pub fn body(n: usize) -> String {
    format!("{n}\n")
}

// Everything below is compiled for WebAssembly only (the bindings need the wasm target).
#[cfg(target_arch = "wasm32")]
mod component {
    // Generate Rust bindings for the `formatter-plugin` world of the WIT package. `path` is
    // relative to this crate's Cargo.toml; the generated modules mirror the WIT names:
    // `samgeo::plugin::types` (records), `samgeo::plugin::host` (imports) and
    // `exports::samgeo::plugin::formatter` (the `Guest` trait to implement).
    wit_bindgen::generate!({ world: "formatter-plugin", path: "../../../wit/0.1.0" });

    // The record types we read and return.
    use samgeo::plugin::types::{Output, PluginInfo, Request};

    // The type that implements the exported interface (it holds no state: the host may create
    // a fresh instance for every request).
    struct Count;

    impl exports::samgeo::plugin::formatter::Guest for Count {
        // `info` names the plugin: `name` is the `output_format` value clients ask for.
        fn info() -> PluginInfo {
            PluginInfo {
                name: "count-v0-1".to_string(),
                description: "Number of masks as text/plain (a samgeo:plugin@0.1.0 component)"
                    .to_string(),
            }
        }

        // `format` gets the masks, the georeferencing and the string parameters, and returns
        // the HTTP body with its content type and file name. An `Err` reaches the client as
        // an error message; a panic traps and the host answers with a server error.
        fn format(req: Request) -> Result<Output, String> {
            // Host services are plain functions: here a line in the server's log.
            samgeo::plugin::host::log(
                samgeo::plugin::host::LogLevel::Debug,
                &format!("counting {} masks", req.masks.masks.len()),
            );
            Ok(Output {
                content_type: "text/plain; charset=utf-8".to_string(),
                file_name: "count.txt".to_string(),
                bytes: super::body(req.masks.masks.len()).into_bytes(),
            })
        }
    }

    // Register `Count` as the component's export.
    export!(Count);
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_is_the_count() {
        assert_eq!(super::body(3), "3\n");
    }
}
