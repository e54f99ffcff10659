namespace Vae.Core.Data

open System.IO

/// A data file is not what its reader expects. The message names the file, the field and what was expected.
type DataFormatException(file: string, field: string, expected: string, found: string, ?inner: exn) =
    inherit IOException(
        sprintf "%s: %s: expected %s, found %s" file field expected found,
        Option.toObj inner)
    /// The file that was read.
    member _.File = file
    /// The field (header part, element or property) that was wrong.
    member _.Field = field
    /// What the reader expected.
    member _.Expected = expected
    /// What the file held.
    member _.Found = found

/// A data file's SHA-256 differs from the recorded one.
type ChecksumMismatchException(file: string, expected: string, actual: string) =
    inherit DataFormatException(file, "SHA-256", expected, actual)

/// A data set could not be acquired from any source. The message lists what was tried.
type DataUnavailableException(dataset: string, attempts: string list) =
    inherit IOException(
        sprintf "%s could not be acquired; tried:\n  %s" dataset (String.concat "\n  " attempts))
    /// The data set's name.
    member _.Dataset = dataset
    /// One line per source tried, with why it failed.
    member _.Attempts = attempts

/// Byte-level helpers shared by the readers.
module internal Bytes =
    open System.IO.Compression

    /// Whether the bytes start with the gzip magic 1F 8B.
    let isGzip (b: byte[]) = b.Length >= 2 && b.[0] = 0x1fuy && b.[1] = 0x8buy

    /// Reads a whole decompressing stream over b; a corrupt stream is a DataFormatException naming field.
    let private decompress (file: string) (field: string) (expected: string) (open': Stream -> Stream) (b: byte[]) : byte[] =
        try
            use input = new MemoryStream(b)
            use z = open' input
            use out = new MemoryStream()
            z.CopyTo out
            out.ToArray()
        with
        | :? InvalidDataException | :? EndOfStreamException as e -> raise (DataFormatException(file, field, expected, e.Message, e))

    /// The CRC-32 (IEEE 802.3) of the bytes, as gzip's trailer records it.
    let crc32 (b: byte[]) = System.IO.Hashing.Crc32.HashToUInt32(System.ReadOnlySpan<byte>(b))

    /// Decompresses a whole (single-member) gzip stream; a corrupt or truncated stream is a
    /// DataFormatException. The trailer's CRC-32 and length are checked: .NET's GZipStream
    /// returns a truncated stream's prefix without complaint.
    let gunzip (file: string) (b: byte[]) : byte[] =
        let out = decompress file "gzip stream" "a complete gzip stream" (fun input -> new GZipStream(input, CompressionMode.Decompress)) b
        let trailer o = if b.Length >= 18 then System.BitConverter.ToUInt32(b, b.Length - 8 + o) else 0u
        if b.Length < 18 || trailer 4 <> uint32 out.Length || trailer 0 <> crc32 out then
            raise (DataFormatException(file, "gzip stream", "a complete gzip stream (trailer CRC-32 and length matching the data)",
                                       sprintf "%d bytes that decompress to %d bytes without a matching trailer (truncated?)" b.Length out.Length))
        out

    /// Decompresses a whole zlib stream (MAT-file miCOMPRESSED).
    let inflateZlib (file: string) (b: byte[]) : byte[] =
        decompress file "miCOMPRESSED element" "a complete zlib stream" (fun input -> new ZLibStream(input, CompressionMode.Decompress)) b

    /// Reads a file; a missing file is a FileNotFoundException naming it.
    let readFile (path: string) : byte[] =
        if not (File.Exists path) then raise (FileNotFoundException(sprintf "%s: no such file" path, path))
        File.ReadAllBytes path

    /// The lower-case hex SHA-256 of the bytes.
    let sha256 (b: byte[]) : string =
        System.Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData b)

    /// The lower-case hex SHA-256 of a file.
    let sha256File (path: string) : string =
        use s = File.OpenRead path
        System.Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData s)
