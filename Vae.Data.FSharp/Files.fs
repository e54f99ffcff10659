namespace Vae.Core

open System
open System.IO

/// File helpers shared by the data cache and checkpoints.
[<RequireQualifiedAccess>]
module Files =

    /// Writes bytes to a temporary name beside path and renames it over path: readers never see a
    /// partial file, and a crash leaves the previous file intact.
    let writeAtomically (path: string) (bytes: byte[]) =
        let full = Path.GetFullPath path
        Directory.CreateDirectory(Path.GetDirectoryName full) |> ignore
        let temp = sprintf "%s.%s.part" full (Guid.NewGuid().ToString("N").Substring(0, 8))
        try
            use f = new FileStream(temp, FileMode.CreateNew, FileAccess.Write)
            f.Write(bytes, 0, bytes.Length)
            f.Flush(true)
            f.Close()
            File.Move(temp, full, true)
        finally
            if File.Exists temp then File.Delete temp
