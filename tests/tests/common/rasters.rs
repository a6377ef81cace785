//! Synthetic GeoTIFFs made with GDAL in memory.
#![allow(dead_code)]

use gdal::raster::Buffer;
use gdal::spatial_ref::SpatialRef;
use gdal::DriverManager;

/// A coloured rectangle: columns x0..x1, rows y0..y1 (exclusive).
#[derive(Debug, Clone, Copy)]
pub struct Rect {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
    pub rgb: [u8; 3],
}

/// A scene: a plain background and rectangles painted over it.
pub struct Scene {
    pub width: usize,
    pub height: usize,
    pub background: [u8; 3],
    pub rects: Vec<Rect>,
    /// GDAL geotransform; None for no georeferencing.
    pub geotransform: Option<[f64; 6]>,
    pub epsg: Option<u32>,
}

pub const GREEN: [u8; 3] = [40, 160, 40];
pub const RED: [u8; 3] = [220, 30, 30];
pub const BLUE: [u8; 3] = [30, 40, 220];
pub const YELLOW: [u8; 3] = [230, 220, 40];

/// UTM 18N, 10 m pixels.
pub const UTM_GT: [f64; 6] = [500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0];

impl Scene {
    /// 400×300 green field with one red square at columns 150..250, rows 100..200, EPSG:32618.
    pub fn red_square() -> Scene {
        Scene {
            width: 400,
            height: 300,
            background: GREEN,
            rects: vec![Rect {
                x0: 150,
                y0: 100,
                x1: 250,
                y1: 200,
                rgb: RED,
            }],
            geotransform: Some(UTM_GT),
            epsg: Some(32618),
        }
    }

    /// 1024×1024 with three large objects, EPSG:32618: real work for the encoder and the
    /// automatic generator (slow requests for timeout and shutdown tests).
    pub fn three_objects_1024() -> Scene {
        let rect = |x0, y0, x1, y1, rgb| Rect {
            x0,
            y0,
            x1,
            y1,
            rgb,
        };
        Scene {
            width: 1024,
            height: 1024,
            background: GREEN,
            rects: vec![
                rect(100, 100, 400, 300, RED),
                rect(600, 150, 900, 500, BLUE),
                rect(200, 600, 500, 950, YELLOW),
            ],
            geotransform: Some(UTM_GT),
            epsg: Some(32618),
        }
    }

    /// 1024×640 with six small objects spread over it, EPSG:32618: several tiles of 256 px
    /// (overlap 32), an object in each part (the tiled job tests).
    pub fn six_objects_1024x640() -> Scene {
        let rects = [
            (60, 60),
            (420, 80),
            (700, 120),
            (120, 400),
            (500, 420),
            (820, 430),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (x, y))| Rect {
            x0: x,
            y0: y,
            x1: x + 70,
            y1: y + 60,
            rgb: if i % 2 == 0 { RED } else { BLUE },
        })
        .collect();
        Scene {
            width: 1024,
            height: 640,
            background: GREEN,
            rects,
            geotransform: Some(UTM_GT),
            epsg: Some(32618),
        }
    }

    /// Pixels, band-sequential.
    fn bands(&self) -> [Vec<u8>; 3] {
        let n = self.width * self.height;
        let mut bands = [vec![0u8; n], vec![0u8; n], vec![0u8; n]];
        for (c, band) in bands.iter_mut().enumerate() {
            band.fill(self.background[c]);
            for r in &self.rects {
                for y in r.y0..r.y1 {
                    for x in r.x0..r.x1 {
                        band[y * self.width + x] = r.rgb[c];
                    }
                }
            }
        }
        bands
    }

    /// The scene as GeoTIFF bytes.
    pub fn geotiff(&self) -> Vec<u8> {
        let mem = DriverManager::get_driver_by_name("MEM").unwrap();
        let mut ds = mem
            .create_with_band_type::<u8, _>("", self.width, self.height, 3)
            .unwrap();
        if let Some(gt) = self.geotransform {
            ds.set_geo_transform(&gt).unwrap();
        }
        if let Some(epsg) = self.epsg {
            ds.set_spatial_ref(&SpatialRef::from_epsg(epsg).unwrap())
                .unwrap();
        }
        for (i, data) in self.bands().into_iter().enumerate() {
            let mut band = ds.rasterband(i + 1).unwrap();
            let mut buffer = Buffer::new((self.width, self.height), data);
            band.write((0, 0), (self.width, self.height), &mut buffer)
                .unwrap();
        }
        let name = format!("/vsimem/scene-{}-{:p}.tif", std::process::id(), &ds);
        let gtiff = DriverManager::get_driver_by_name("GTiff").unwrap();
        let copy = ds
            .create_copy(&gtiff, &name, &gdal::cpl::CslStringList::new())
            .unwrap();
        drop(copy);
        gdal::vsi::get_vsi_mem_file_bytes_owned(&name).unwrap()
    }

    /// Map coordinates of pixel corner (x, y).
    pub fn to_map(&self, x: f64, y: f64) -> (f64, f64) {
        let g = self.geotransform.unwrap_or([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        (g[0] + x * g[1] + y * g[2], g[3] + x * g[4] + y * g[5])
    }

    /// A rectangle's footprint as a polygon in map coordinates.
    pub fn footprint(&self, r: &Rect) -> geo::Polygon<f64> {
        let corners = [
            (r.x0, r.y0),
            (r.x1, r.y0),
            (r.x1, r.y1),
            (r.x0, r.y1),
            (r.x0, r.y0),
        ];
        let ring: Vec<geo::Coord<f64>> = corners
            .iter()
            .map(|&(x, y)| {
                let (mx, my) = self.to_map(x as f64, y as f64);
                geo::Coord { x: mx, y: my }
            })
            .collect();
        geo::Polygon::new(geo::LineString::new(ring), vec![])
    }

    /// The centre of a rectangle in pixels.
    pub fn centre(r: &Rect) -> (f64, f64) {
        ((r.x0 + r.x1) as f64 / 2.0, (r.y0 + r.y1) as f64 / 2.0)
    }
}

/// IoU of two (multi)polygon areas.
pub fn iou(a: &geo::MultiPolygon<f64>, b: &geo::MultiPolygon<f64>) -> f64 {
    use geo::{Area, BooleanOps};
    let inter = a.intersection(b).unsigned_area();
    let union = a.union(b).unsigned_area();
    if union == 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// The polygons of every feature of a GeoJSON FeatureCollection.
pub fn feature_polygons(fc: &geojson::FeatureCollection) -> Vec<geo::MultiPolygon<f64>> {
    fc.features
        .iter()
        .map(|f| {
            let geom: geo::Geometry<f64> = f.geometry.clone().unwrap().try_into().unwrap();
            match geom {
                geo::Geometry::Polygon(p) => geo::MultiPolygon(vec![p]),
                geo::Geometry::MultiPolygon(m) => m,
                other => panic!("unexpected geometry {other:?}"),
            }
        })
        .collect()
}
