namespace Vae.Core

open Vae
open System
open System.IO
open System.Security.Cryptography
open System.Text
open System.Text.Json
open TorchSharp

/// A checkpoint's contents: text fields (settings and progress) and named tensors.
type CheckpointContents =
    { /// Settings and progress as text, written in key order.
      Fields: Map<string, string>
      /// Named tensors in a fixed order (parameters, optimiser state, RNG state).
      Tensors: (string * torch.Tensor) list }

/// Checkpoint contents as a safetensors file, the format PyTorch and the Hugging Face tools read: a little-endian
/// uint64 header length, a JSON header (the text fields in "__metadata__", then each tensor's dtype, shape and
/// data offsets), padded with spaces to 8 bytes, then the tensors' raw little-endian values back to back. The
/// metadata's "vae.sha256" is the SHA-256 of the data. Reading instantiates no type named by the file, checks every
/// size, offset and the hash before allocating a tensor, and raises CheckpointException naming what is wrong.
[<RequireQualifiedAccess>]
module Safetensors =

    /// The metadata key of the data's SHA-256.
    let [<Literal>] HashKey = "vae.sha256"
    let private maxHeader = 100L * 1024L * 1024L

    let private dtypeName (t: torch.Tensor) =
        if t.dtype = torch.uint8 then "U8", 1
        elif t.dtype = torch.float32 then "F32", 4
        elif t.dtype = torch.float64 then "F64", 8
        else invalidArg "tensor" (sprintf "safetensors files here hold U8, F32 and F64 tensors, not %O" t.dtype)

    /// The contents as safetensors bytes; equal contents give equal bytes.
    let toBytes (c: CheckpointContents) : byte[] =
        let data = new MemoryStream()
        let entries =
            [ for name, t in c.Tensors ->
                  let dtype, width = dtypeName t
                  let t = t.detach().contiguous()
                  let bytes = Array.zeroCreate<byte> (int t.NumberOfElements * width)
                  t.bytes.CopyTo(Span<byte>(bytes))
                  let start = data.Length
                  data.Write(bytes, 0, bytes.Length)
                  name, dtype, t.shape, start, data.Length ]
        let body = data.ToArray()
        let hash = Convert.ToHexStringLower(SHA256.HashData body)
        use header = new MemoryStream()
        (use w = new Utf8JsonWriter(header)
         w.WriteStartObject()
         w.WriteStartObject "__metadata__"
         for KeyValue(k, v) in c.Fields.Add(HashKey, hash) do w.WriteString(k, v)
         w.WriteEndObject()
         for name, dtype, shape, start, stop in entries do
             w.WriteStartObject name
             w.WriteString("dtype", dtype)
             w.WriteStartArray "shape"
             for d in shape do w.WriteNumberValue d
             w.WriteEndArray()
             w.WriteStartArray "data_offsets"
             w.WriteNumberValue start
             w.WriteNumberValue stop
             w.WriteEndArray()
             w.WriteEndObject()
         w.WriteEndObject())
        let json = header.ToArray()
        let padded = Array.append json (Array.create ((8 - json.Length % 8) % 8) (byte ' '))
        Array.concat [ BitConverter.GetBytes(uint64 padded.Length); padded; body ]

    /// Whether bytes look like a safetensors file (a plausible header length, then a JSON object).
    let looksLike (b: byte[]) =
        b.Length >= 10 && (let n = BitConverter.ToUInt64(b, 0) in n >= 2UL && n <= uint64 (b.Length - 8)) && b.[8] = byte '{'

    /// The header's text fields and tensor entries (name, dtype, width, shape, data offsets), checked against the
    /// dataLength bytes of data that follow it: every entry inside the data, the entries tiling it exactly.
    let private parseHeader (file: string) (header: ReadOnlyMemory<byte>) (dataLength: int64) =
        let fail what : 'a = raise (CheckpointException(file, what))
        // JSON text is UTF-8; an invalid byte would surface later as another exception type, so refuse it here.
        (try UTF8Encoding(false, true).GetCharCount(header.Span) |> ignore
         with :? DecoderFallbackException -> fail "header: not valid UTF-8")
        use doc =
            try JsonDocument.Parse(header)
            with :? JsonException as e -> fail (sprintf "header: not JSON (%s)" e.Message)
        if doc.RootElement.ValueKind <> JsonValueKind.Object then fail "header: expected a JSON object"
        let seen = Collections.Generic.HashSet<string>()
        let mutable fields = Map.empty
        let specs = ResizeArray()
        for p in doc.RootElement.EnumerateObject() do
            if not (seen.Add p.Name) then fail (sprintf "header: '%s' appears more than once" p.Name)
            if p.Name = "__metadata__" then
                if p.Value.ValueKind <> JsonValueKind.Object then fail "header: '__metadata__' is not an object of strings"
                for m in p.Value.EnumerateObject() do
                    if m.Value.ValueKind <> JsonValueKind.String then fail (sprintf "metadata '%s': expected a string" m.Name)
                    if fields.ContainsKey m.Name then fail (sprintf "metadata '%s' appears more than once" m.Name)
                    fields <- fields.Add(m.Name, m.Value.GetString())
            else
                let v = p.Value
                let prop (k: string) =
                    match v.ValueKind with
                    | JsonValueKind.Object ->
                        (match v.TryGetProperty k with
                         | true, x -> x
                         | _ -> fail (sprintf "tensor '%s': no '%s'" p.Name k))
                    | _ -> fail (sprintf "tensor '%s': expected an object" p.Name)
                let scalar, width =
                    match (prop "dtype").ValueKind, (prop "dtype").ToString() with
                    | JsonValueKind.String, "U8" -> torch.uint8, 1
                    | JsonValueKind.String, "F32" -> torch.float32, 4
                    | JsonValueKind.String, "F64" -> torch.float64, 8
                    | _, d -> fail (sprintf "tensor '%s': dtype %s, expected U8, F32 or F64" p.Name d)
                let integers (k: string) =
                    let a = prop k
                    if a.ValueKind <> JsonValueKind.Array then fail (sprintf "tensor '%s': '%s' is not an array" p.Name k)
                    [| for x in a.EnumerateArray() ->
                           match x.ValueKind, x.TryGetInt64() with
                           | JsonValueKind.Number, (true, v) when v >= 0L -> v
                           | _ -> fail (sprintf "tensor '%s': '%s' holds %s, expected non-negative integers" p.Name k (x.ToString())) |]
                let shape = integers "shape"
                if shape.Length > 8 then fail (sprintf "tensor '%s': rank %d, expected at most 8" p.Name shape.Length)
                let count =
                    shape |> Array.fold (fun acc d ->
                        if d > 0L && acc > dataLength / d then fail (sprintf "tensor '%s': shape %A exceeds the file" p.Name shape)
                        acc * d) 1L
                match integers "data_offsets" with
                | [| start; stop |] when start <= stop && stop <= dataLength && stop - start = count * int64 width ->
                    specs.Add((p.Name, scalar, width, shape, start, stop))
                | offsets ->
                    fail (sprintf "tensor '%s': data offsets [%s] do not hold %d values of %d bytes within the %d data bytes"
                              p.Name (String.Join(", ", offsets)) count width dataLength)
        // The tensors tile the data exactly, in order: no gap, no overlap, nothing after.
        let ordered = specs |> Seq.sortBy (fun (_, _, _, _, start, _) -> start) |> Seq.toList
        let mutable at = 0L
        for name, _, _, _, start, stop in ordered do
            if start <> at then fail (sprintf "tensor '%s': data starts at %d, expected %d (the tensors must tile the data)" name start at)
            at <- stop
        if at <> dataLength then fail (sprintf "%d data bytes after the last tensor" (dataLength - at))
        fields, List.ofSeq specs

    /// The header's length n from a file's first bytes, checked against the bytes after them.
    let private headerLength (file: string) (first8: byte[]) (fileLength: int64) =
        let fail what : 'a = raise (CheckpointException(file, what))
        if fileLength < 8L then fail (sprintf "truncated: %d bytes, expected at least the 8-byte header length" fileLength)
        let n = BitConverter.ToUInt64(first8, 0)
        if n > uint64 (fileLength - 8L) || int64 n > maxHeader then
            fail (sprintf "header length %d exceeds the file's %d bytes after it" n (fileLength - 8L))
        int n

    /// A safetensors file's text fields, read from its header alone (checked as ofBytes checks it; the data and its
    /// hash are not read).
    let readFields (path: string) : Map<string, string> =
        use f = File.OpenRead path
        let first8 = Array.zeroCreate<byte> 8
        let got = f.ReadAtLeast(Span<byte>(first8), 8, false)
        let n = headerLength path first8 (if got < 8 then int64 got else f.Length)
        let header = Array.zeroCreate<byte> n
        f.ReadExactly(header, 0, n)
        let fields, _ = parseHeader path (ReadOnlyMemory<byte>(header)) (f.Length - 8L - int64 n)
        fields.Remove HashKey

    /// Parses safetensors bytes; file names the source in errors.
    let ofBytes (file: string) (b: byte[]) : CheckpointContents =
        let fail what : 'a = raise (CheckpointException(file, what))
        let n = headerLength file b (int64 b.Length)
        let dataStart = 8 + n
        let dataLength = int64 (b.Length - dataStart)
        let fields, specs = parseHeader file (ReadOnlyMemory<byte>(b, 8, n)) dataLength
        match fields.TryFind HashKey with
        | Some h when h <> Convert.ToHexStringLower(SHA256.HashData(ReadOnlySpan<byte>(b, dataStart, int dataLength))) ->
            fail "corrupt: the SHA-256 of the data does not match the metadata's vae.sha256"
        | _ -> ()
        let tensors =
            [ for name, scalar, _, shape, start, stop in specs ->
                  let t = torch.empty(shape, dtype = scalar)
                  Span<byte>(b, dataStart + int start, int (stop - start)).CopyTo(t.bytes)
                  name, t ]
        { Fields = fields.Remove HashKey; Tensors = tensors }

/// The versioned checkpoint format. Layout (little-endian): the magic "VAECKPT\000", a uint32 format
/// version, a uint32 count of text fields and each as (uint32 length, UTF-8 key, uint32 length, UTF-8
/// value), a uint32 count of tensors and each as (uint32 length, UTF-8 name, uint8 dtype code
/// 1 = uint8, 2 = float32, 3 = float64, uint8 rank, int64 sizes, raw values), then a CRC-32 of all
/// preceding bytes. Reading instantiates no type named by the file, and checks every size against
/// the bytes that remain before allocating anything. No clock time or host name is stored, so equal
/// states give byte-identical files.
[<RequireQualifiedAccess>]
module Checkpoint =

    /// The CRC-32 a checkpoint ends with (of all its preceding bytes).
    let crc32 (bytes: byte[]) = Vae.Core.Data.Bytes.crc32 bytes

    /// The current format version.
    let [<Literal>] Version = 1u
    let private magic = Encoding.ASCII.GetBytes "VAECKPT\000"
    // Text is read strictly: an invalid byte is an error, not a replacement character that would read as another name.
    let private strictUtf8 = UTF8Encoding(false, true)

    let private code (t: torch.Tensor) =
        if t.dtype = torch.uint8 then 1uy, 1
        elif t.dtype = torch.float32 then 2uy, 4
        elif t.dtype = torch.float64 then 3uy, 8
        else invalidArg "tensor" (sprintf "checkpoints hold uint8, float32 and float64 tensors, not %O" t.dtype)

    /// The checkpoint as bytes.
    let toBytes (c: CheckpointContents) : byte[] =
        use ms = new MemoryStream()
        use w = new BinaryWriter(ms, Encoding.UTF8, true)
        let str (s: string) =
            let b = Encoding.UTF8.GetBytes s
            w.Write(uint32 b.Length)
            w.Write b
        w.Write magic
        w.Write Version
        w.Write(uint32 c.Fields.Count)
        for KeyValue(k, v) in c.Fields do
            str k
            str v
        w.Write(uint32 c.Tensors.Length)
        for name, t in c.Tensors do
            let dtype, width = code t
            str name
            w.Write dtype
            w.Write(byte t.shape.Length)
            for d in t.shape do w.Write d
            let t = t.detach().contiguous()
            let bytes = Array.zeroCreate<byte> (int t.NumberOfElements * width)
            t.bytes.CopyTo(Span<byte>(bytes))
            w.Write bytes
        w.Flush()
        let body = ms.ToArray()
        Array.append body (BitConverter.GetBytes(Vae.Core.Data.Bytes.crc32 body))

    /// Parses checkpoint bytes; file names the source in errors.
    let ofBytes (file: string) (b: byte[]) : CheckpointContents =
        let fail what : 'a = raise (CheckpointException(file, what))
        if b.Length < magic.Length + 8 || b.[.. magic.Length - 1] <> magic then
            fail "not a Vae checkpoint (expected the magic bytes VAECKPT)"
        let crc = BitConverter.ToUInt32(b, b.Length - 4)
        let body = b.[.. b.Length - 5]
        let mutable o = magic.Length
        let need n field =
            if n < 0L || int64 o + n > int64 body.Length then
                fail (sprintf "truncated or corrupt: %s needs %d bytes at offset %d, %d remain" field n o (body.Length - o))
        let u32 field = need 4L field; let v = BitConverter.ToUInt32(body, o) in o <- o + 4; v
        let str field =
            let n = int64 (u32 (field + " length"))
            need n field
            let s =
                try strictUtf8.GetString(body, o, int n)
                with :? DecoderFallbackException -> fail (sprintf "%s is not valid UTF-8" field)
            o <- o + int n
            s
        let version = u32 "format version"
        if version <> Version then fail (sprintf "format version %d, expected %d" version Version)
        if Vae.Core.Data.Bytes.crc32 body <> crc then fail "corrupt: the CRC-32 of the contents does not match"
        let fields = [ for _ in 1u .. u32 "field count" -> let k = str "field key" in k, str (sprintf "field '%s'" k) ]
        // The writer orders the fields by key (ordinal), each once; anything else (a name twice would leave a value
        // unread) is not a file it made.
        fields |> List.pairwise |> List.tryFind (fun ((a, _), (b, _)) -> String.CompareOrdinal(a, b) >= 0)
        |> Option.iter (fun ((a, _), (b, _)) ->
            fail (if a = b then sprintf "field '%s' appears more than once" a else sprintf "field '%s' follows '%s', expected the fields in order of their names" b a))
        let fields = Map.ofList fields
        let tensors =
            [ for _ in 1u .. u32 "tensor count" do
                  let name = str "tensor name"
                  need 2L (sprintf "tensor '%s' header" name)
                  let dtype, rank = body.[o], int body.[o + 1]
                  o <- o + 2
                  let scalar, width =
                      match dtype with
                      | 1uy -> torch.uint8, 1 | 2uy -> torch.float32, 4 | 3uy -> torch.float64, 8
                      | c -> fail (sprintf "tensor '%s': dtype code %d, expected 1, 2 or 3" name c)
                  if rank > 8 then fail (sprintf "tensor '%s': rank %d, expected at most 8" name rank)
                  need (8L * int64 rank) (sprintf "tensor '%s' sizes" name)
                  let dims = Array.init rank (fun i -> BitConverter.ToInt64(body, o + 8 * i))
                  o <- o + 8 * rank
                  let count =
                      dims |> Array.fold (fun acc d ->
                          if d < 0L || (d > 0L && acc > int64 body.Length / d) then
                              fail (sprintf "tensor '%s': sizes %A exceed the file" name dims)
                          acc * d) 1L
                  need (count * int64 width) (sprintf "tensor '%s' values" name)
                  let t = torch.empty(dims, dtype = scalar)
                  Span<byte>(body, o, int count * width).CopyTo(t.bytes)
                  o <- o + int count * width
                  yield name, t ]
        if o <> body.Length then fail (sprintf "%d unexpected bytes after the last tensor" (body.Length - o))
        match tensors |> List.countBy fst |> List.tryFind (fun (_, n) -> n > 1) with
        | Some (name, _) -> fail (sprintf "tensor '%s' appears more than once" name)
        | None -> ()
        { Fields = fields; Tensors = tensors }

    /// Writes the checkpoint atomically (temporary name, then rename): in the safetensors format, except that a
    /// path ending in .vae keeps this original format for the programs that read it.
    let save (path: string) (c: CheckpointContents) =
        Files.writeAtomically path (if path.EndsWith(".vae", StringComparison.OrdinalIgnoreCase) then toBytes c else Safetensors.toBytes c)

    let private notACheckpoint (path: string) : 'a =
        raise (CheckpointException(path, "not a checkpoint: expected a safetensors file (or the older format that starts with VAECKPT)"))

    /// Reads a checkpoint file in either format (told apart by their first bytes). The contents' tensors are the
    /// caller's: dispose them (dispose) when what was read from them has been copied.
    let load (path: string) : CheckpointContents =
        if not (File.Exists path) then raise (FileNotFoundException(sprintf "%s: no such checkpoint" path, path))
        let b = File.ReadAllBytes path
        if b.Length >= magic.Length && b.[.. magic.Length - 1] = magic then ofBytes path b
        elif Safetensors.looksLike b then Safetensors.ofBytes path b
        else notACheckpoint path

    /// Frees the native memory of contents' tensors.
    let dispose (c: CheckpointContents) =
        for _, t in c.Tensors do t.Dispose()

    /// A checkpoint file's text fields: from a safetensors file's header alone, without reading its tensors (the
    /// older format is read whole and its tensors freed).
    let readFields (path: string) : Map<string, string> =
        if not (File.Exists path) then raise (FileNotFoundException(sprintf "%s: no such checkpoint" path, path))
        let first = Array.zeroCreate<byte> 10
        let got = (use f = File.OpenRead path in f.ReadAtLeast(Span<byte>(first), first.Length, false))
        if got >= magic.Length && first.[.. magic.Length - 1] = magic then
            let c = load path
            dispose c
            c.Fields
        elif got = first.Length && first.[8] = byte '{' then Safetensors.readFields path
        else notACheckpoint path

    /// A text field, or a CheckpointException naming it.
    let field (file: string) (key: string) (c: CheckpointContents) : string =
        match c.Fields.TryFind key with
        | Some v -> v
        | None -> raise (CheckpointException(file, sprintf "field '%s' is missing" key))

    /// A tensor, checked for dtype and shape, or a CheckpointException naming what differs.
    let tensor (file: string) (name: string) (dtype: torch.ScalarType) (shape: int64[]) (c: CheckpointContents) : torch.Tensor =
        match c.Tensors |> List.tryFind (fun (n, _) -> n = name) with
        | None -> raise (CheckpointException(file, sprintf "tensor '%s' is missing" name))
        | Some(_, t) when t.dtype <> dtype -> raise (CheckpointException(file, sprintf "tensor '%s' is %O, expected %O" name t.dtype dtype))
        | Some(_, t) when t.shape <> shape ->
            raise (CheckpointException(file, sprintf "tensor '%s' has shape [%s], expected [%s]" name (String.Join(", ", t.shape)) (String.Join(", ", shape))))
        | Some(_, t) -> t
