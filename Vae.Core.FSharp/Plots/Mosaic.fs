namespace Vae.Core.Plots

open System
open System.IO
open TorchSharp
open Vae.Core

/// Image mosaics written as 8-bit grey-scale PNG files (no drawing library needed).
[<RequireQualifiedAccess>]
module Png =

    let private chunk (w: BinaryWriter) (kind: string) (data: byte[]) =
        let typed = Array.append (Text.Encoding.ASCII.GetBytes kind) data
        let be (v: uint32) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]
        w.Write(be (uint32 data.Length))
        w.Write typed
        w.Write(be (Vae.Core.Data.Bytes.crc32 typed))

    /// Encodes a grey-scale image (row-major bytes, width x height) as PNG.
    let encodeGrey (width: int) (height: int) (pixels: byte[]) : byte[] =
        if pixels.Length <> width * height then invalidArg (nameof pixels) "expected width x height bytes"
        use ms = new MemoryStream()
        use w = new BinaryWriter(ms)
        w.Write [| 0x89uy; byte 'P'; byte 'N'; byte 'G'; 13uy; 10uy; 26uy; 10uy |]
        let be (v: int) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]
        // IHDR: size, bit depth 8, colour type 0 (grey), deflate, adaptive filtering, no interlace.
        chunk w "IHDR" (Array.concat [ be width; be height; [| 8uy; 0uy; 0uy; 0uy; 0uy |] ])
        let raw = Array.zeroCreate<byte> (height * (width + 1))
        for y in 0 .. height - 1 do
            Array.blit pixels (y * width) raw (y * (width + 1) + 1) width // filter byte 0 (none) per row
        use z = new MemoryStream()
        (use zl = new Compression.ZLibStream(z, Compression.CompressionLevel.Optimal)
         zl.Write(raw, 0, raw.Length))
        chunk w "IDAT" (z.ToArray())
        chunk w "IEND" [||]
        w.Flush()
        ms.ToArray()

/// Arranging images into a grid.
[<RequireQualifiedAccess>]
module Mosaic =

    /// A grid of count images (each height x width, values in [0, 1], row-major, image after
    /// image) with columns per row and a 1-pixel border, as grey bytes: (width, height, pixels).
    let layout (count: int) (height: int) (width: int) (columns: int) (values: float32[]) : int * int * byte[] =
        if values.Length <> count * height * width then invalidArg (nameof values) "expected count x height x width values"
        let columns = max 1 (min columns count)
        let rows = (count + columns - 1) / columns
        let W, H = columns * (width + 1) + 1, rows * (height + 1) + 1
        let out = Array.create (W * H) 255uy
        for i in 0 .. count - 1 do
            let ox, oy = 1 + (i % columns) * (width + 1), 1 + (i / columns) * (height + 1)
            for y in 0 .. height - 1 do
                for x in 0 .. width - 1 do
                    let v = values.[i * height * width + y * width + x]
                    out.[(oy + y) * W + ox + x] <- byte (Math.Round(float (max 0.0f (min 1.0f v)) * 255.0))
        W, H, out

    /// Writes the grid of layout as a PNG file (atomically).
    let save (path: string) (count: int) (height: int) (width: int) (columns: int) (values: float32[]) =
        let W, H, pixels = layout count height width columns values
        Files.writeAtomically path (Png.encodeGrey W H pixels)

    /// Appendix A: latent points of a J = 2 model on an n x n grid placed at the inverse Gaussian CDF
    /// of evenly spaced points (i + 1/2) / n of the unit square, row by row (second coordinate
    /// decreasing down the rows, so the picture reads like a plot). Returns [n*n; 2].
    let manifoldGrid (n: int) (dtype: torch.ScalarType) : Tensor =
        let u = torch.linspace(0.5 / float n, 1.0 - 0.5 / float n, int64 n, dtype = dtype)
        let z = torch.special.ndtri u
        let zx = z.repeat(int64 n)                                  // varies along a row
        let zy = z.flip(0L).repeat_interleave(int64 n)              // constant along a row
        torch.stack([| zx; zy |], 1L)
