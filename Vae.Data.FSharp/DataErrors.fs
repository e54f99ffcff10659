namespace Vae.Core.Data

open Vae
open System.IO

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
