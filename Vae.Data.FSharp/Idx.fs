namespace Vae.Core.Data

open Vae

/// A set of equally sized grey-scale images, row-major, values in [0, 1] (as float32).
type Images =
    { /// Number of images.
      Count: int
      /// Rows per image.
      Height: int
      /// Columns per image.
      Width: int
      /// Count x (Height x Width) values, image after image, each row-major.
      Pixels: float32[] }
    /// Values per image (Height x Width).
    member this.Dimension = this.Height * this.Width

/// Reader of the IDX format of MNIST (LeCun et al.): a 4-byte magic (0, 0, type code, number of
/// dimensions), one big-endian int32 per dimension, then the values. Raw or gzip-compressed.
[<RequireQualifiedAccess>]
module Idx =

    /// An IDX file of unsigned bytes (type code 0x08): its dimensions and values.
    type UByteArray = { Dims: int[]; Values: byte[] }

    let private typeName =
        function
        | 0x08uy -> "unsigned byte (0x08)" | 0x09uy -> "signed byte (0x09)" | 0x0Buy -> "int16 (0x0B)"
        | 0x0Cuy -> "int32 (0x0C)" | 0x0Duy -> "float32 (0x0D)" | 0x0Euy -> "float64 (0x0E)"
        | c -> sprintf "unknown type code 0x%02X" c

    /// Parses IDX bytes (already decompressed); file names the source in errors.
    let parse (file: string) (b: byte[]) : UByteArray =
        let fail field expected found = raise (DataFormatException(file, field, expected, found))
        if b.Length < 4 then fail "header" "at least 4 bytes (the magic number)" (sprintf "%d bytes" b.Length)
        if b.[0] <> 0uy || b.[1] <> 0uy then
            fail "magic number" "two zero bytes then a type code and a dimension count" (sprintf "%02X %02X %02X %02X" b.[0] b.[1] b.[2] b.[3])
        if b.[2] <> 0x08uy then fail "type code" "unsigned byte (0x08)" (typeName b.[2])
        let n = int b.[3]
        if n < 1 || n > 4 then fail "dimension count" "1 to 4" (string n)
        let headerLen = 4 + 4 * n
        if b.Length < headerLen then fail "header" (sprintf "%d bytes for %d dimensions" headerLen n) (sprintf "%d bytes" b.Length)
        let dims =
            Array.init n (fun i ->
                let o = 4 + 4 * i
                let d = (int b.[o] <<< 24) ||| (int b.[o + 1] <<< 16) ||| (int b.[o + 2] <<< 8) ||| int b.[o + 3]
                if d <= 0 then fail (sprintf "dimension %d" i) "a positive size" (string d)
                d)
        let expected = dims |> Array.fold (fun acc d -> acc * int64 d) 1L
        let actual = int64 (b.Length - headerLen)
        if expected <> actual then
            fail "data length"
                (sprintf "%d bytes for dimensions %s" expected (dims |> Array.map string |> String.concat " x "))
                (sprintf "%d bytes%s" actual (if actual < expected then " (truncated?)" else " (trailing bytes)"))
        { Dims = dims; Values = b.[headerLen..] }

    /// Reads an IDX file of unsigned bytes, raw or gzip-compressed.
    let read (path: string) : UByteArray =
        let b = Bytes.readFile path
        parse path (if Bytes.isGzip b then Bytes.gunzip path b else b)

    /// Images from an IDX array of 3 dimensions (count, rows, columns); bytes scaled by 1/255 into [0, 1].
    let toImages (file: string) (a: UByteArray) : Images =
        if a.Dims.Length <> 3 then
            raise (DataFormatException(file, "dimension count", "3 (images x rows x columns)", string a.Dims.Length))
        { Count = a.Dims.[0]; Height = a.Dims.[1]; Width = a.Dims.[2]
          Pixels = a.Values |> Array.map (fun v -> float32 v / 255.0f) }

    /// Reads an image file (MNIST's idx3-ubyte layout).
    let readImages (path: string) : Images = read path |> toImages path

    /// Reads a label file (MNIST's idx1-ubyte layout): one byte per item.
    let readLabels (path: string) : byte[] =
        let a = read path
        if a.Dims.Length <> 1 then
            raise (DataFormatException(path, "dimension count", "1 (a label per item)", string a.Dims.Length))
        a.Values

    /// Encodes unsigned bytes as an IDX file (big-endian dimensions), e.g. to export images in MNIST's layout.
    let encode (dims: int[]) (values: byte[]) : byte[] =
        if dims.Length < 1 || dims.Length > 4 then invalidArg (nameof dims) "IDX holds 1 to 4 dimensions"
        if Array.fold (fun acc d -> acc * int64 d) 1L dims <> int64 values.Length then
            invalidArg (nameof values) "the dimensions do not match the number of values"
        [| yield! [| 0uy; 0uy; 0x08uy; byte dims.Length |]
           for d in dims do yield! [| byte (d >>> 24); byte (d >>> 16); byte (d >>> 8); byte d |]
           yield! values |]
