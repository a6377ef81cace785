//! Test formatter `misbuilt-field`: a mis-built component. Its `wit/` is a copy of
//! `samgeo:plugin@0.2.0` in which one record field was renamed (`mask.pixels` where the real
//! package has `mask.area`), as happens when an author edits a copied WIT by hand. Like
//! `misbuilt-wit` (a retyped field), it claims the real package name and version: the host must
//! refuse it at load time and name the field, never load it and fail at the first request.

/// The response body for a request carrying `n` masks.
pub fn body(n: usize) -> String {
    format!("{n}\n")
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "formatter-plugin", path: "wit" });

    use samgeo::plugin::types::{Output, PluginInfo, Request};

    struct Misbuilt;

    impl exports::samgeo::plugin::formatter::Guest for Misbuilt {
        fn info() -> PluginInfo {
            PluginInfo {
                name: "misbuilt-field".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                description: "A component built against a corrupted WIT (mask.area renamed)"
                    .to_string(),
                params: Vec::new(),
            }
        }

        fn format(req: Request) -> Result<Output, String> {
            Ok(Output {
                content_type: "text/plain; charset=utf-8".to_string(),
                file_name: "count.txt".to_string(),
                bytes: super::body(req.masks.masks.len()).into_bytes(),
            })
        }
    }

    export!(Misbuilt);
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_is_the_count() {
        assert_eq!(super::body(2), "2\n");
    }
}
