#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| samgeo_fuzz::raster_decode(data));
