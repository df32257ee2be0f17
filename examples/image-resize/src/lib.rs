//! Image resizing at the edge: `GET /any/path.jpg?w=300&h=200&format=png` fetches
//! the image from the backend `origin`, fits it into `w`×`h` (either may be left
//! out; the aspect ratio is kept) and answers it as PNG or JPEG (default: the
//! source's format).
//!
//! Bad input gets a clear answer, never a crash: 400 for bad parameters, 413 for a
//! source image over `[config] max_source_pixels`, 415 for what is not PNG or JPEG,
//! 502 when the origin fails. Each client IP is rate-limited (429 and a minute in
//! the penalty box past `[config] requests_per_second`). Verge's memory and CPU
//! limits (`[limits]`) bound whatever gets through.

use std::io::Cursor;
use std::time::Duration;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits};
use verge::ratelimit::{Erl, PenaltyBox, RateCounter, Window};
use verge::{Error, Request, Response};

fn config<T: std::str::FromStr>(key: &str, default: T) -> T {
    verge::config::get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn refuse(status: u16, message: impl std::fmt::Display) -> Result<Response, Error> {
    Ok(Response::from_status(status)
        .with_header("cache-control", "no-store")
        .with_body(format!("{message}\n")))
}

/// `w` or `h`: absent, or 1 to `max`.
fn side(req: &Request, name: &str, max: u32) -> Result<Option<u32>, String> {
    match req.query_param(name) {
        None => Ok(None),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "{name} must be a whole number from 1 to {max}, not {text:?}"
            )),
        },
    }
}

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    // Rate limiting first: it is the cheap part.
    let client = req.client_ip().map(|ip| ip.to_string()).unwrap_or_default();
    let erl = Erl::new(
        RateCounter::open("resize"),
        PenaltyBox::open("resize-abusers"),
    );
    let limit = config("requests_per_second", 20);
    if erl.check_rate(
        &client,
        1,
        Window::TenSeconds,
        limit,
        Duration::from_secs(60),
    )? {
        return Ok(Response::from_status(429)
            .with_header("retry-after", "60")
            .with_body("too many requests; try again in a minute\n"));
    }

    let max_side = config("max_side", 4096);
    let (w, h) = match (side(&req, "w", max_side), side(&req, "h", max_side)) {
        (Ok(w), Ok(h)) => (w, h),
        (Err(e), _) | (_, Err(e)) => return refuse(400, e),
    };
    let format = match req.query_param("format").as_deref() {
        None => None,
        Some("png") => Some(ImageFormat::Png),
        Some("jpeg" | "jpg") => Some(ImageFormat::Jpeg),
        Some(other) => return refuse(400, format!("format must be png or jpeg, not {other:?}")),
    };

    let path = req.uri().path().to_owned();
    let origin = match verge::Request::get(format!("http://origin{path}"))?.send("origin") {
        Ok(resp) => resp,
        Err(e) => return refuse(502, format!("the origin failed: {e}")),
    };
    if !origin.status().is_success() {
        return refuse(502, format!("the origin answered {}", origin.status()));
    }
    let cache_control = origin.header("cache-control").map(str::to_owned);
    let source = origin.into_body().into_bytes()?;

    // The header says the format and size; check both before decoding anything, so a
    // small file claiming a huge image (a decompression bomb) costs nothing.
    let source_format = match imagesize::image_type(&source) {
        Ok(imagesize::ImageType::Png) => ImageFormat::Png,
        Ok(imagesize::ImageType::Jpeg) => ImageFormat::Jpeg,
        _ => return refuse(415, "the origin's response is not a PNG or JPEG image"),
    };
    let (sw, sh) = match imagesize::blob_size(&source) {
        Ok(size) => (size.width as u64, size.height as u64),
        Err(e) => return refuse(415, format!("the image cannot be read: {e}")),
    };
    let max_pixels: u64 = config("max_source_pixels", 40_000_000);
    if sw * sh > max_pixels {
        return refuse(
            413,
            format!("the source image is {sw}x{sh}; at most {max_pixels} pixels are resized"),
        );
    }

    let mut reader = ImageReader::new(Cursor::new(&source));
    reader.set_format(source_format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(160 << 20);
    reader.limits(limits);
    let image = match reader.decode() {
        Ok(image) => image,
        Err(e) => return refuse(415, format!("the image cannot be decoded: {e}")),
    };
    // Fit into the box; a missing side does not constrain.
    let resized = image.resize(
        w.unwrap_or(max_side),
        h.unwrap_or(max_side),
        FilterType::Triangle,
    );

    let out_format = format.unwrap_or(source_format);
    let mut out = Vec::new();
    let content_type = match out_format {
        ImageFormat::Jpeg => {
            let quality = config("jpeg_quality", 80u8).clamp(1, 100);
            // JPEG has no alpha.
            resized
                .to_rgb8()
                .write_with_encoder(JpegEncoder::new_with_quality(&mut out, quality))?;
            "image/jpeg"
        }
        _ => {
            resized.write_with_encoder(PngEncoder::new(&mut out))?;
            "image/png"
        }
    };
    Ok(Response::from_body(out)
        .with_header("content-type", content_type)
        .with_header(
            "cache-control",
            cache_control.unwrap_or_else(|| "public, max-age=86400".into()),
        )
        .with_header(
            "x-resized",
            format!("{sw}x{sh} to {}x{}", resized.width(), resized.height()),
        ))
}
