namespace Vae.Core.Data

open Vae
open System

/// Reader of MATLAB Level 5 MAT-files (numeric matrices of class uint8 or double): the 128-byte
/// header, data elements in both tag forms, miMATRIX and zlib-compressed miCOMPRESSED elements.
[<RequireQualifiedAccess>]
module MatFile =

    /// A numeric matrix variable. Values are in MATLAB's column-major order.
    type Variable =
        { Name: string
          /// MATLAB class name: "uint8" or "double".
          Class: string
          Dims: int[]
          /// Values converted to float64, column-major.
          Values: float[] }

    // Data types (miXXX) and array classes (mxXXX) of the Level 5 format.
    let [<Literal>] private MiInt8 = 1
    let [<Literal>] private MiUInt8 = 2
    let [<Literal>] private MiInt32 = 5
    let [<Literal>] private MiUInt32 = 6
    let [<Literal>] private MiDouble = 9
    let [<Literal>] private MiMatrix = 14
    let [<Literal>] private MiCompressed = 15
    let [<Literal>] private MxDouble = 6
    let [<Literal>] private MxUInt8 = 9

    let private className =
        function
        | 1 -> "cell" | 2 -> "struct" | 3 -> "object" | 4 -> "char" | 5 -> "sparse" | 6 -> "double"
        | 7 -> "single" | 8 -> "int8" | 9 -> "uint8" | 10 -> "int16" | 11 -> "uint16" | 12 -> "int32"
        | 13 -> "uint32" | 14 -> "int64" | 15 -> "uint64" | c -> sprintf "unknown class %d" c

    /// A cursor over one buffer, in the file's byte order.
    type private Reader(file: string, b: byte[], bigEndian: bool) =
        member _.File = file
        member _.Bytes = b
        member _.Fail field expected found : 'a = raise (DataFormatException(file, field, expected, found))
        member this.Need (o: int) (n: int) (field: string) =
            if o < 0 || n < 0 || int64 o + int64 n > int64 b.Length then
                this.Fail field (sprintf "%d bytes at offset %d" n o) (sprintf "a buffer of %d bytes (truncated?)" b.Length)
        member this.U16 (o: int) =
            this.Need o 2 "uint16"
            if bigEndian then (int b.[o] <<< 8) ||| int b.[o + 1] else int b.[o] ||| (int b.[o + 1] <<< 8)
        member this.U32 (o: int) : uint32 =
            this.Need o 4 "uint32"
            let v = BitConverter.ToUInt32(b, o)
            if bigEndian then Buffers.Binary.BinaryPrimitives.ReverseEndianness v else v
        member this.I32 (o: int) = int (this.U32 o)
        member this.F64 (o: int) =
            this.Need o 8 "float64"
            let v = BitConverter.ToInt64(b, o)
            BitConverter.Int64BitsToDouble(if bigEndian then Buffers.Binary.BinaryPrimitives.ReverseEndianness v else v)
        member _.BigEndian = bigEndian

    /// A data element: type, data offset and size, and where the next element starts.
    type private Element = { Type: int; Data: int; Size: int; Next: int }

    let private element (r: Reader) (o: int) (limit: int) (what: string) : Element =
        r.Need o 4 what
        let first = r.U32 o
        if first >>> 16 <> 0u then
            // Small data element: type in the low 16 bits, size (at most 4) in the high 16, data in the next 4 bytes.
            let size = int (first >>> 16)
            if size > 4 then r.Fail (what + " tag") "a small element of at most 4 bytes" (sprintf "%d bytes" size)
            if o + 8 > limit then r.Fail what (sprintf "8 bytes at offset %d" o) "the end of the enclosing element"
            { Type = int (first &&& 0xFFFFu); Data = o + 4; Size = size; Next = o + 8 }
        else
            r.Need o 8 (what + " tag")
            let ty = int first
            let size = r.U32(o + 4)
            if int64 o + 8L + int64 size > int64 limit then
                r.Fail (what + " size") (sprintf "at most %d bytes (to the end of the enclosing data)" (limit - o - 8)) (sprintf "%d bytes (truncated?)" size)
            let size = int size
            // Compressed elements are not padded; all others are padded to 8 bytes.
            let padded = if ty = MiCompressed then size else (size + 7) &&& ~~~7
            { Type = ty; Data = o + 8; Size = size; Next = min limit (o + 8 + padded) }

    let private expectType (r: Reader) (e: Element) (ty: int) (field: string) (tyName: string) =
        if e.Type <> ty then r.Fail field tyName (sprintf "data type %d" e.Type)

    /// Parses one miMATRIX element's contents; None for a matrix class this reader does not convert.
    let private matrix (r: Reader) (e: Element) : Result<Variable, string * string> =
        let limit = e.Data + e.Size
        let flags = element r e.Data limit "array flags"
        expectType r flags MiUInt32 "array flags" "miUINT32 (6)"
        if flags.Size <> 8 then r.Fail "array flags" "8 bytes" (sprintf "%d bytes" flags.Size)
        let flagWord = r.U32 flags.Data
        let cls = int (flagWord &&& 0xFFu)
        let complex = flagWord &&& 0x800u <> 0u
        let dimsEl = element r flags.Next limit "dimensions"
        expectType r dimsEl MiInt32 "dimensions" "miINT32 (5)"
        if dimsEl.Size % 4 <> 0 || dimsEl.Size < 8 then r.Fail "dimensions" "at least 2 int32 values" (sprintf "%d bytes" dimsEl.Size)
        let dims = Array.init (dimsEl.Size / 4) (fun i -> r.I32(dimsEl.Data + 4 * i))
        if dims |> Array.exists (fun d -> d < 0) then r.Fail "dimensions" "non-negative sizes" (sprintf "%A" dims)
        let nameEl = element r dimsEl.Next limit "array name"
        expectType r nameEl MiInt8 "array name" "miINT8 (1)"
        let name = Text.Encoding.ASCII.GetString(r.Bytes, nameEl.Data, nameEl.Size)
        if cls <> MxUInt8 && cls <> MxDouble then Error(name, className cls)
        elif complex then Error(name, "complex " + className cls)
        else
            let count = dims |> Array.fold (fun acc d -> acc * int64 d) 1L
            let real = element r nameEl.Next limit (sprintf "real part of '%s'" name)
            let width =
                match real.Type with
                | MiUInt8 -> 1
                | MiDouble -> 8
                | t -> r.Fail (sprintf "real part of '%s'" name) "miUINT8 (2) or miDOUBLE (9) data" (sprintf "data type %d" t)
            if int64 real.Size <> count * int64 width then
                r.Fail (sprintf "real part of '%s'" name)
                    (sprintf "%d bytes for dimensions %s" (count * int64 width) (dims |> Array.map string |> String.concat " x "))
                    (sprintf "%d bytes" real.Size)
            let values =
                if width = 1 then Array.init (int count) (fun i -> float r.Bytes.[real.Data + i])
                else Array.init (int count) (fun i -> r.F64(real.Data + 8 * i))
            Ok { Name = name; Class = className cls; Dims = dims; Values = values }

    /// Every variable in the file's bytes: Ok for numeric uint8/double matrices, Error (name, class) for others.
    let parseAll (file: string) (b: byte[]) : Result<Variable, string * string> list =
        if b.Length < 128 then
            raise (DataFormatException(file, "header", "128 bytes", sprintf "%d bytes" b.Length))
        let text = Text.Encoding.ASCII.GetString(b, 0, 116)
        if not (text.StartsWith "MATLAB 5.0 MAT-file") then
            raise (DataFormatException(file, "header text", "'MATLAB 5.0 MAT-file...'", sprintf "'%s'" (text.Substring(0, 20).Trim())))
        let bigEndian =
            match char b.[126], char b.[127] with
            | 'I', 'M' -> false
            | 'M', 'I' -> true
            | x, y -> raise (DataFormatException(file, "endian indicator", "'IM' or 'MI'", sprintf "'%c%c'" x y))
        let r = Reader(file, b, bigEndian)
        let version = r.U16 124
        if version <> 0x0100 then
            raise (DataFormatException(file, "version", "0x0100 (Level 5)", sprintf "0x%04X" version))
        let rec elements (r: Reader) (o: int) acc =
            if o >= r.Bytes.Length then List.rev acc
            else
                let e = element r o r.Bytes.Length "data element"
                match e.Type with
                | MiMatrix -> elements r e.Next (matrix r e :: acc)
                | MiCompressed ->
                    let inner = Bytes.inflateZlib file r.Bytes.[e.Data .. e.Data + e.Size - 1]
                    let ir = Reader(file, inner, r.BigEndian)
                    elements r e.Next (List.rev (elements ir 0 []) @ acc)
                | _ -> elements r e.Next acc
        elements r 128 []

    /// Reads the named variable; a missing variable or an unsupported class is a DataFormatException.
    let readVariable (path: string) (name: string) : Variable =
        let all = parseAll path (Bytes.readFile path)
        let names = all |> List.map (function Ok v -> v.Name | Error(n, _) -> n)
        match all |> List.tryFind (function Ok v -> v.Name = name | Error(n, _) -> n = name) with
        | Some(Ok v) -> v
        | Some(Error(_, cls)) ->
            raise (DataFormatException(path, sprintf "variable '%s'" name, "a real uint8 or double matrix", sprintf "class %s" cls))
        | None ->
            raise (DataFormatException(path, sprintf "variable '%s'" name, "present",
                                       if names.IsEmpty then "no variables" else sprintf "only %s" (String.Join(", ", names))))

    /// Encodes uint8 matrices as a little-endian Level 5 MAT-file; with compress, each variable is a
    /// zlib miCOMPRESSED element. Names of at most 4 characters use the small element form.
    let encode (compress: bool) (variables: (string * int[] * byte[]) list) : byte[] =
        let le (v: int) = BitConverter.GetBytes v
        let pad (b: byte[]) = Array.append b (Array.zeroCreate ((8 - b.Length % 8) % 8))
        let el (ty: int) (data: byte[]) = Array.concat [ le ty; le data.Length; pad data ]
        let matrixBytes (name: string, dims: int[], values: byte[]) =
            let nameBytes = Text.Encoding.ASCII.GetBytes name
            let nameEl =
                if nameBytes.Length <= 4 then Array.concat [ le (MiInt8 ||| (nameBytes.Length <<< 16)); pad nameBytes ] |> Array.truncate 8
                else el MiInt8 nameBytes
            let body =
                Array.concat [ el MiUInt32 (Array.append (le MxUInt8) (le 0))
                               el MiInt32 (dims |> Array.collect le)
                               nameEl
                               el MiUInt8 values ]
            Array.append (Array.append (le MiMatrix) (le body.Length)) body
        let header =
            let text = Text.Encoding.ASCII.GetBytes("MATLAB 5.0 MAT-file, written by Vae".PadRight 116)
            Array.concat [ text; Array.create 8 0x20uy; [| 0uy; 1uy; byte 'I'; byte 'M' |] ]
        let elements =
            variables |> List.map (fun v ->
                let m = matrixBytes v
                if not compress then m
                else
                    use out = new IO.MemoryStream()
                    (use z = new IO.Compression.ZLibStream(out, IO.Compression.CompressionLevel.Optimal)
                     z.Write(m, 0, m.Length))
                    let zb = out.ToArray()
                    Array.concat [ le MiCompressed; le zb.Length; zb ])
        Array.concat (header :: elements)
