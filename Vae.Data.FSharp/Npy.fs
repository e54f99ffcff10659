namespace Vae.Core.Data

open Vae
open System
open System.Text.RegularExpressions

/// Reader of NumPy .npy files of images: uint8 ('|u1', scaled by 1/255), little-endian float32 ('<f4', taken as is)
/// or float64 ('<f8', numpy's default, converted to float32), C order, shape (count, ...); each item is flattened to
/// one image. NaN and infinite values are refused naming their row and column.
[<RequireQualifiedAccess>]
module Npy =

    let private field (header: string) (key: string) =
        let m = Regex.Match(header, sprintf @"'%s'\s*:\s*('[^']*'|True|False|\([^)]*\))" key)
        if m.Success then Some m.Groups.[1].Value else None

    /// Parses .npy bytes into images (a 1-D item becomes 1 x d; 2-D items keep their shape).
    let parse (file: string) (b: byte[]) : Images =
        let fail f e x : 'a = raise (DataFormatException(file, f, e, x))
        if b.Length < 10 || b.[0] <> 0x93uy || Text.Encoding.ASCII.GetString(b, 1, 5) <> "NUMPY" then
            fail "magic string" "\\x93NUMPY" (if b.Length < 6 then sprintf "%d bytes" b.Length else BitConverter.ToString(b, 0, 6))
        let major = int b.[6]
        let headerLen, start =
            match major with
            | 1 -> int (BitConverter.ToUInt16(b, 8)), 10
            | 2 | 3 when b.Length >= 12 -> int (BitConverter.ToUInt32(b, 8)), 12
            | _ -> fail "format version" "1.0, 2.0 or 3.0" (sprintf "%d.%d" major (int b.[7]))
        if headerLen < 0 || start + headerLen > b.Length then
            fail "header length" (sprintf "at most %d bytes" (b.Length - start)) (string headerLen)
        let header = Text.Encoding.Latin1.GetString(b, start, headerLen)
        let descr = field header "descr" |> Option.defaultWith (fun () -> fail "header 'descr'" "a dtype string" "none")
        let fortran = field header "fortran_order" |> Option.defaultWith (fun () -> fail "header 'fortran_order'" "False" "none")
        if fortran <> "False" then fail "header 'fortran_order'" "False (C order)" fortran
        let shapeText = field header "shape" |> Option.defaultWith (fun () -> fail "header 'shape'" "a tuple" "none")
        let shape =
            shapeText.Trim('(', ')').Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
            |> Array.map (fun s ->
                match Int64.TryParse s with
                | true, v when v > 0L && v <= int64 Int32.MaxValue -> int v
                | _ -> fail "header 'shape'" "positive integer sizes" shapeText)
        if shape.Length < 2 || shape.Length > 3 then
            fail "header 'shape'" "(count, values) or (count, rows, columns)" shapeText
        let width =
            match descr with
            | "'|u1'" | "'<u1'" -> 1
            | "'<f4'" -> 4
            | "'<f8'" -> 8
            | d -> fail "header 'descr'" "'|u1' (uint8), '<f4' or '<f8' (little-endian float32 or float64)" d
        let count = shape |> Array.fold (fun acc d -> acc * int64 d) 1L
        let dataStart = start + headerLen
        let actual = int64 (b.Length - dataStart)
        if actual <> count * int64 width then
            fail "data length" (sprintf "%d bytes for shape %s" (count * int64 width) shapeText) (sprintf "%d bytes" actual)
        let pixels =
            match width with
            | 1 -> Array.init (int count) (fun i -> float32 b.[dataStart + i] / 255.0f)
            | 4 -> Array.init (int count) (fun i -> BitConverter.ToSingle(b, dataStart + 4 * i))
            | _ -> Array.init (int count) (fun i -> float32 (BitConverter.ToDouble(b, dataStart + 8 * i)))
        let h, w = if shape.Length = 3 then shape.[1], shape.[2] else 1, shape.[1]
        match pixels |> Array.tryFindIndex (fun v -> not (Single.IsFinite v)) with
        | Some i ->
            let d = h * w
            fail (sprintf "row %d, column %d" (i / d) (i % d)) "a finite value"
                 (if width = 8 then sprintf "%g (float64; float32 holds at most 3.4e38)" (BitConverter.ToDouble(b, dataStart + 8 * i)) else string pixels.[i])
        | None -> ()
        { Count = shape.[0]; Height = h; Width = w; Pixels = pixels }

    /// Reads a .npy file of images.
    let read (path: string) : Images = parse path (Bytes.readFile path)

    /// Encodes images as a version 1.0 .npy file of uint8 (values scaled by 255 and rounded) or float32.
    let encode (asUInt8: bool) (x: Images) : byte[] =
        let descr = if asUInt8 then "|u1" else "<f4"
        let dict = sprintf "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d, %d), }" descr x.Count x.Height x.Width
        // The header (magic, version, length, dict, newline) is padded with spaces to a multiple of 64 bytes.
        let total = (10 + dict.Length + 1 + 63) / 64 * 64
        let header = dict.PadRight(total - 10 - 1) + "\n"
        let data =
            if asUInt8 then x.Pixels |> Array.map (fun v -> byte (MathF.Round(v * 255.0f)))
            else x.Pixels |> Array.collect (fun (v: float32) -> BitConverter.GetBytes v)
        Array.concat [ [| 0x93uy |]; Text.Encoding.ASCII.GetBytes "NUMPY"; [| 1uy; 0uy |]
                       BitConverter.GetBytes(uint16 header.Length); Text.Encoding.ASCII.GetBytes header; data ]
