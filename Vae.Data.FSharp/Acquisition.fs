namespace Vae.Core.Data

open Vae
open System
open System.Diagnostics
open System.IO
open System.Net.Http

/// Progress of one download.
type DownloadProgress =
    { /// The file being fetched.
      File: string
      /// Bytes received so far.
      Received: int64
      /// Total bytes, when the server says.
      Total: int64 option }

/// Where data sets are cached and where else they may come from.
type DataOptions =
    { /// The cache directory; None means VAE_DATA_DIR, else the user's cache folder (see Cache.defaultDirectory).
      CacheDirectory: string option
      /// A Frey Face file, or a directory holding frey_rawface.mat, to use when the download fails
      /// (None means the VAE_FREY_FACE environment variable, if set).
      FreyFaceSource: string option
      /// Try the canonical download addresses (false: go straight to the fallbacks).
      AllowDownload: bool
      /// Download progress.
      Progress: DownloadProgress -> unit
      /// One line per acquisition step (which source was tried, what was accepted).
      Log: string -> unit }

    /// Defaults: the default cache, downloads allowed, no progress display, no log.
    static member Default =
        { CacheDirectory = None; FreyFaceSource = None; AllowDownload = true; Progress = ignore; Log = ignore }

/// A file of a data set as it is stored in the cache, and where it can be downloaded from.
type RemoteFile =
    { /// The name in the cache (uncompressed).
      Name: string
      /// Canonical download addresses, tried in order.
      Urls: string list
      /// SHA-256 of the downloaded bytes (gzip-compressed for MNIST).
      DownloadSha256: string
      /// SHA-256 of the stored (uncompressed) file, checked on every load.
      Sha256: string }

/// The data cache: its location, atomic writes, checksums.
[<RequireQualifiedAccess>]
module Cache =

    /// The environment variable that names the cache directory.
    let [<Literal>] EnvironmentVariable = "VAE_DATA_DIR"

    /// VAE_DATA_DIR if set, else $XDG_CACHE_HOME/vae, else ~/.cache/vae (LocalApplicationData\vae on Windows).
    let defaultDirectory () : string =
        let env = Environment.GetEnvironmentVariable EnvironmentVariable
        if not (String.IsNullOrWhiteSpace env) then env
        elif OperatingSystem.IsWindows() then
            Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.LocalApplicationData, "vae")
        else
            let xdg = Environment.GetEnvironmentVariable "XDG_CACHE_HOME"
            let root = if String.IsNullOrWhiteSpace xdg then Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache") else xdg
            Path.Combine(root, "vae")

    /// The cache directory the options name.
    let directory (opts: DataOptions) = opts.CacheDirectory |> Option.defaultWith defaultDirectory

    /// Writes bytes atomically (temporary name, then rename).
    let writeAtomically (path: string) (bytes: byte[]) = Vae.Core.Files.writeAtomically path bytes

    /// Records the SHA-256 of an accepted file in the directory's SHA256SUMS (sha256sum's format).
    let record (dir: string) (name: string) (sha: string) =
        let sums = Path.Combine(dir, "SHA256SUMS")
        let others =
            if File.Exists sums then File.ReadAllLines sums |> Array.filter (fun l -> not (l.EndsWith("  " + name)))
            else [||]
        let lines = Array.append others [| sprintf "%s  %s" sha name |] |> Array.sort
        writeAtomically sums (Text.Encoding.UTF8.GetBytes(String.Join("\n", lines) + "\n"))

    /// The lower-case hex SHA-256 of a file.
    let sha256File (path: string) = Bytes.sha256File path

    /// Checks a cached file against its recorded SHA-256.
    let verify (path: string) (sha: string) =
        let actual = Bytes.sha256File path
        if actual <> sha then raise (ChecksumMismatchException(path, sha, actual))

/// Fetching files: canonical addresses first, then fallbacks.
[<RequireQualifiedAccess>]
module Download =

    let private client =
        lazy
            (let handler = new SocketsHttpHandler(ConnectTimeout = TimeSpan.FromSeconds 5.0)
             new HttpClient(handler, Timeout = TimeSpan.FromMinutes 5.0))

    /// Downloads url into memory (reporting progress); raises on any HTTP or network failure.
    let bytes (url: string) (name: string) (progress: DownloadProgress -> unit) : byte[] =
        use response = client.Value.GetAsync(url, HttpCompletionOption.ResponseHeadersRead).GetAwaiter().GetResult()
        response.EnsureSuccessStatusCode() |> ignore
        let total = response.Content.Headers.ContentLength |> Option.ofNullable
        use stream = response.Content.ReadAsStream()
        use out = new MemoryStream()
        let buffer = Array.zeroCreate<byte> 65536
        let mutable n = stream.Read(buffer, 0, buffer.Length)
        while n > 0 do
            out.Write(buffer, 0, n)
            progress { File = name; Received = out.Length; Total = total }
            n <- stream.Read(buffer, 0, buffer.Length)
        out.ToArray()

    /// Tries each address of the file; on success the uncompressed bytes are checked and stored
    /// atomically in dir. Returns the failures (one line per address) when none worked.
    let remote (opts: DataOptions) (dir: string) (file: RemoteFile) : Result<unit, string list> =
        let rec attempt urls failures =
            match urls with
            | [] -> Error(List.rev failures)
            | (url: string) :: rest ->
                opts.Log(sprintf "downloading %s" url)
                let outcome =
                    try
                        let data = bytes url file.Name opts.Progress
                        let sha = Bytes.sha256 data
                        if sha <> file.DownloadSha256 then Error(sprintf "%s: SHA-256 %s, expected %s" url sha file.DownloadSha256)
                        else
                            let raw = if Bytes.isGzip data then Bytes.gunzip url data else data
                            let rawSha = Bytes.sha256 raw
                            if rawSha <> file.Sha256 then Error(sprintf "%s: uncompressed SHA-256 %s, expected %s" url rawSha file.Sha256)
                            else
                                Cache.writeAtomically (Path.Combine(dir, file.Name)) raw
                                Cache.record dir file.Name rawSha
                                Ok()
                    with e ->
                        let rec inner (e: exn) = if isNull e.InnerException then e.Message else inner e.InnerException
                        Error(sprintf "%s: %s" url (inner e))
                match outcome with
                | Ok() -> Ok()
                | Error why -> attempt rest (why :: failures)
        attempt file.Urls []

    /// Runs `npm pack <spec>` in a fresh temporary directory and returns the tarball's path.
    let npmPack (spec: string) (log: string -> unit) : Result<string, string> =
        let dir = Path.Combine(Path.GetTempPath(), "vae-npm-" + Guid.NewGuid().ToString("N"))
        Directory.CreateDirectory dir |> ignore
        log (sprintf "npm pack %s" spec)
        try
            let psi = ProcessStartInfo("npm", [ "pack"; spec; "--silent" ], WorkingDirectory = dir,
                                       RedirectStandardOutput = true, RedirectStandardError = true)
            use p = Process.Start psi
            let stderr = p.StandardError.ReadToEndAsync()
            p.StandardOutput.ReadToEnd() |> ignore
            if not (p.WaitForExit(TimeSpan.FromMinutes 5.0)) then
                p.Kill true
                Error(sprintf "npm pack %s: no answer within 5 minutes" spec)
            elif p.ExitCode <> 0 then
                Error(sprintf "npm pack %s: exit code %d: %s" spec p.ExitCode (stderr.Result.Trim()))
            else
                match Directory.GetFiles(dir, "*.tgz") with
                | [| tgz |] -> Ok tgz
                | found -> Error(sprintf "npm pack %s: expected one .tgz, found %d" spec found.Length)
        with e -> Error(sprintf "npm pack %s: %s (is Node.js's npm on the PATH?)" spec e.Message)

    /// The files named in wanted, read out of a .tgz (gzip-compressed tar) by their paths in it.
    let fromTarball (tgz: string) (wanted: Map<string, string>) : Map<string, byte[]> =
        use fs = File.OpenRead tgz
        use gz = new IO.Compression.GZipStream(fs, IO.Compression.CompressionMode.Decompress)
        use tar = new Formats.Tar.TarReader(gz)
        let rec loop acc =
            match tar.GetNextEntry() with
            | null -> acc
            | entry when wanted.ContainsKey entry.Name && not (isNull entry.DataStream) ->
                use ms = new MemoryStream()
                entry.DataStream.CopyTo ms
                loop (Map.add wanted.[entry.Name] (ms.ToArray()) acc)
            | _ -> loop acc
        loop Map.empty
