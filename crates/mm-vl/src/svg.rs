//! SVG drawings rendered to RGBA pixels (`resvg`), scaled to their drawn extent: a square for
//! the emoji styles ([`render_svg`]), or the drawing's own shape as a cutout with transparency
//! around it ([`render_svg_cutout`], for clip art used as a scene's object).

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg::{Options, Tree};

/// Pixels left free at each edge of a rendered square.
const MARGIN: f32 = 1.0;

/// Why an SVG could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The bytes are not an SVG that `usvg` reads.
    #[error("not a readable SVG: {0}")]
    Parse(String),
    /// The drawing has no visible extent.
    #[error("the SVG draws nothing")]
    Empty,
    /// The requested size is zero.
    #[error("cannot render to a {0} px square")]
    Size(u32),
    /// The rendered pixels could not be encoded as PNG.
    #[error("PNG encoding: {0}")]
    Encode(String),
}

/// Renders `svg` into a `size` x `size` RGBA pixmap, its drawn extent (strokes included)
/// scaled to fill the square less a one-pixel margin, keeping its aspect, centred.
pub fn render_svg(svg: &[u8], size: u32) -> Result<Pixmap, RenderError> {
    let (tree, (w, h)) = parse(svg)?;
    let scale = (size as f32 - 2.0 * MARGIN) / w.max(h);
    render(&tree, scale, size, size)
}

/// Renders `svg` cropped to its drawn extent (strokes included), its longest side `longest`
/// pixels less a one-pixel margin, keeping its aspect: a cutout whose transparent pixels are
/// where the drawing is not.
pub fn render_svg_cutout(svg: &[u8], longest: u32) -> Result<Pixmap, RenderError> {
    let (tree, (w, h)) = parse(svg)?;
    let scale = (longest as f32 - 2.0 * MARGIN) / w.max(h);
    let side = |x: f32| ((x * scale + 2.0 * MARGIN).round() as u32).clamp(1, longest.max(1));
    render(&tree, scale, side(w), side(h))
}

fn parse(svg: &[u8]) -> Result<(Tree, (f32, f32)), RenderError> {
    let tree =
        Tree::from_data(svg, &Options::default()).map_err(|e| RenderError::Parse(e.to_string()))?;
    let bounds = tree.root().abs_stroke_bounding_box();
    let (w, h) = (bounds.width(), bounds.height());
    if !(w > 0.0 && h > 0.0) {
        return Err(RenderError::Empty);
    }
    Ok((tree, (w, h)))
}

/// The drawing at `scale`, centred in a `width` x `height` pixmap.
fn render(tree: &Tree, scale: f32, width: u32, height: u32) -> Result<Pixmap, RenderError> {
    if width == 0 || height == 0 {
        return Err(RenderError::Size(width.min(height)));
    }
    let mut pixmap = Pixmap::new(width, height).ok_or(RenderError::Size(width.max(height)))?;
    let bounds = tree.root().abs_stroke_bounding_box();
    let dx = (width as f32 - bounds.width() * scale) / 2.0 - bounds.x() * scale;
    let dy = (height as f32 - bounds.height() * scale) / 2.0 - bounds.y() * scale;
    let transform = Transform::from_scale(scale, scale).post_translate(dx, dy);
    resvg::render(tree, transform, &mut pixmap.as_mut());
    Ok(pixmap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_fills_the_square_with_the_drawing() {
        // A 10 x 20 red rectangle in the corner of a 72 px canvas: scaled to 62 px tall
        // and centred, it covers the middle column and leaves the left edge empty.
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 72 72">
            <rect x="2" y="2" width="10" height="20" fill="#ff0000"/></svg>"##;
        let p = render_svg(svg, 64).unwrap();
        let at = |x: u32, y: u32| p.pixel(x, y).unwrap();
        assert_eq!((at(32, 32).red(), at(32, 32).alpha()), (255, 255), "centre");
        assert_eq!(at(32, 1).alpha(), 255, "top row inside the margin");
        assert_eq!(at(32, 0).alpha(), 0, "the margin");
        assert_eq!(at(5, 32).alpha(), 0, "left of the drawing");
    }

    #[test]
    fn a_cutout_keeps_the_drawing_shape_and_is_clear_around_it() {
        // A 10 x 20 rectangle rendered as a 40 px cutout: 40 tall, 21 wide (10 x 1.9 plus the margins; the
        // margin stays transparent), opaque inside.
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 72 72">
            <rect x="30" y="5" width="10" height="20" fill="#00ff00"/></svg>"##;
        let p = render_svg_cutout(svg, 40).unwrap();
        assert_eq!((p.width(), p.height()), (21, 40));
        let at = |x: u32, y: u32| p.pixel(x, y).unwrap();
        assert_eq!((at(10, 20).green(), at(10, 20).alpha()), (255, 255));
        assert_eq!(at(10, 0).alpha(), 0, "the margin");
        assert_eq!(at(0, 20).alpha(), 0, "the margin");
        let empty = br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"></svg>"#;
        assert!(matches!(
            render_svg_cutout(empty, 40),
            Err(RenderError::Empty)
        ));
        assert!(matches!(
            render_svg_cutout(b"not svg", 40),
            Err(RenderError::Parse(_))
        ));
    }
}
