//! A check of a FLAC file's metadata blocks before symphonia reads them: symphonia 0.5 sizes
//! buffers from the 32-bit lengths inside Vorbis comment and picture blocks, so a damaged
//! length asks for up to 4 GiB before the read fails. Every such length must fit in its block
//! (whose own length is 24-bit), or the file is named as corrupt.

/// Walks the metadata blocks after `fLaC`; the first length that overruns its block is the error.
pub(crate) fn check_flac_metadata(bytes: &[u8]) -> Result<(), String> {
    let mut at = 4; // after "fLaC"
    loop {
        let Some(head) = bytes.get(at..at + 4) else {
            return Ok(()); // cut short: symphonia names it
        };
        let (last, kind) = (head[0] & 0x80 != 0, head[0] & 0x7f);
        let len = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
        let body = &bytes[(at + 4).min(bytes.len())..(at + 4 + len).min(bytes.len())];
        match kind {
            4 => check_comment_block(body)?,
            6 => check_picture_block(body)?,
            _ => {}
        }
        if last {
            return Ok(());
        }
        at += 4 + len;
    }
}

/// Reads a 32-bit length at `*at` (little- or big-endian) and steps over it and what it counts.
fn skip(body: &[u8], at: &mut usize, little: bool, what: &str) -> Result<(), String> {
    let Some(raw) = body.get(*at..*at + 4) else {
        return Err(format!("{what} runs past the end of its metadata block"));
    };
    let raw = [raw[0], raw[1], raw[2], raw[3]];
    let n = if little {
        u32::from_le_bytes(raw)
    } else {
        u32::from_be_bytes(raw)
    } as usize;
    if n > body.len() - *at - 4 {
        return Err(format!(
            "{what} of {n} bytes does not fit in its {}-byte metadata block",
            body.len()
        ));
    }
    *at += 4 + n;
    Ok(())
}

fn check_comment_block(body: &[u8]) -> Result<(), String> {
    let mut at = 0;
    skip(body, &mut at, true, "the Vorbis comment vendor string")?;
    let Some(count) = body.get(at..at + 4) else {
        return Err("the Vorbis comment count runs past the end of its block".into());
    };
    let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]);
    at += 4;
    for _ in 0..count {
        skip(body, &mut at, true, "a Vorbis comment")?;
    }
    Ok(())
}

fn check_picture_block(body: &[u8]) -> Result<(), String> {
    let mut at = 4; // picture type
    skip(body, &mut at, false, "the picture's MIME type")?;
    skip(body, &mut at, false, "the picture's description")?;
    at += 16; // width, height, depth, colours
    if at > body.len() {
        return Err("the picture block is cut short".into());
    }
    skip(body, &mut at, false, "the picture data")
}
