//! Test formatter `misbuilt-wit`: a mis-built component. Its `wit/` is a copy of
//! `samgeo:plugin@0.2.0` in which one record field was retyped (`mask.area: u32` where the real
//! package has `u64`), as happens when an author edits a copied WIT by hand. The component
//! claims the real package name and version, so only a type check of its exports against the
//! host's WIT finds the difference: the host must refuse it at load time and name the field
//! (`types.mask.area`), never load it and fail at the first request.

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
                name: "misbuilt-wit".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                description: "A component built against a corrupted WIT (mask.area: u32)"
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
