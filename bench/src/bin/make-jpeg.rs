//! Writes a W×H photo-like JPEG (a gradient with noise, quality 85) for the
//! image-resize benchmark: `make-jpeg OUT.jpg [W] [H]`.

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: make-jpeg OUT.jpg [W] [H]"))?;
    let w: u32 = args.next().map_or(Ok(1000), |v| v.parse())?;
    let h: u32 = args.next().map_or(Ok(1000), |v| v.parse())?;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        // xorshift noise, so the JPEG is not trivially compressible.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = (seed % 32) as u32;
        image::Rgb([
            ((x * 200 / w) + noise) as u8,
            ((y * 200 / h) + noise) as u8,
            (((x + y) * 100 / (w + h)) + noise) as u8,
        ])
    });
    let file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(file, 85))?;
    Ok(())
}
