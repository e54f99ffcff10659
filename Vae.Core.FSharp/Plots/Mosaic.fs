namespace Vae.Core.Plots

open System
open System.IO
open TorchSharp
open Vae.Core

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

    /// Appendix A: latent points of a J = 2 model on an n x n grid placed at the inverse Gaussian CDF
    /// of evenly spaced points (i + 1/2) / n of the unit square, row by row (second coordinate
    /// decreasing down the rows, so the picture reads like a plot). Returns [n*n; 2].
    let manifoldGrid (n: int) (dtype: torch.ScalarType) : Tensor =
        let u = torch.linspace(0.5 / float n, 1.0 - 0.5 / float n, int64 n, dtype = dtype)
        let z = torch.special.ndtri u
        let zx = z.repeat(int64 n)                                  // varies along a row
        let zy = z.flip(0L).repeat_interleave(int64 n)              // constant along a row
        torch.stack([| zx; zy |], 1L)
