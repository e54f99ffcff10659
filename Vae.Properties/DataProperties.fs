/// Properties of the data readers: round trips, and totality on random and mutated bytes.
module Vae.Properties.DataProperties

open Vae
open Expecto
open FsCheck
open Vae.Core.Data
open Vae.Properties.Generators

let private config = { FsCheckConfig.defaultConfig with maxTest = 300; replay = Some (propertySeed, 0x9E3779B97F4A7C15UL, None) }

let private sampleIdx = Idx.encode [| 3; 4; 5 |] (Array.init 60 (fun i -> byte (i * 4)))
let private sampleMat compress =
    MatFile.encode compress [ "ff", [| 6; 2 |], Array.init 12 byte; "label", [| 1; 3 |], [| 7uy; 8uy; 9uy |] ]
let private sampleNpy = Npy.encode true { Count = 2; Height = 3; Width = 2; Pixels = Array.init 12 (fun i -> float32 i / 11.0f) }
let private gzip (b: byte[]) =
    use ms = new System.IO.MemoryStream()
    (use gz = new System.IO.Compression.GZipStream(ms, System.IO.Compression.CompressionLevel.Fastest)
     gz.Write(b, 0, b.Length))
    ms.ToArray()

let private idxImages (b: byte[]) =
    let a = Idx.parse "random.idx" b
    Idx.toImages "random.idx" a
let private wellFormedVariables (vs: Result<MatFile.Variable, string * string> list) =
    vs |> List.forall (function
        | Ok v -> v.Values.Length = (v.Dims |> Array.fold (*) 1)
        | Error _ -> true)
let private matHeader = Array.sub (sampleMat false) 0 128

[<Tests>]
let tests =
    testList "data readers" [
        testPropertyWithConfig config "IDX encode then parse returns the dimensions and values" <| fun (NonEmptyArray(dims: PositiveInt[])) (seed: int) ->
            let dims = dims |> Array.truncate 4 |> Array.map (fun d -> 1 + d.Get % 7)
            let n = dims |> Array.fold (*) 1
            let values = Array.init n (fun i -> byte (i * 31 + seed))
            let a = Idx.parse "roundtrip" (Idx.encode dims values)
            a.Dims = dims && a.Values = values

        testPropertyWithConfig config "IDX reader is total on random bytes" <| fun (bytes: byte[]) ->
            total (Idx.parse "random.idx") (fun a -> a.Values.Length = Array.fold (*) 1 a.Dims) bytes

        testPropertyWithConfig config "IDX image reader is total on mutated files" <| fun (pos: int) (value: byte) (cut: NonNegativeInt) ->
            total idxImages wellFormedImages (mutate sampleIdx pos value cut.Get)

        testPropertyWithConfig config "gzip-compressed IDX is total on mutated streams" <| fun (pos: int) (value: byte) (cut: NonNegativeInt) ->
            let path = System.IO.Path.GetTempFileName()
            try
                System.IO.File.WriteAllBytes(path, mutate (gzip sampleIdx) pos value cut.Get)
                total (fun _ -> Idx.readImages path) wellFormedImages [||]
            finally System.IO.File.Delete path

        testPropertyWithConfig config "MAT-file encode then parse returns the variables, plain or compressed" <| fun (compress: bool) (NonEmptyArray(values: byte[])) ->
            let bytes = MatFile.encode compress [ "ff", [| 1; values.Length |], values ]
            match MatFile.parseAll "roundtrip.mat" bytes with
            | [ Ok v ] -> v.Name = "ff" && v.Dims = [| 1; values.Length |] && v.Values = Array.map float values
            | _ -> false

        testPropertyWithConfig config "MAT-file reader is total on random bytes after a valid header" <| fun (bytes: byte[]) ->
            total (MatFile.parseAll "random.mat") wellFormedVariables (Array.append matHeader bytes)

        testPropertyWithConfig config "MAT-file reader is total on mutated files, plain or compressed" <| fun (compress: bool) (pos: int) (value: byte) (cut: NonNegativeInt) ->
            total (MatFile.parseAll "mutated.mat") wellFormedVariables (mutate (sampleMat compress) pos value cut.Get)

        testPropertyWithConfig config "npy encode then parse returns the images" <| fun (count: PositiveInt) (h: PositiveInt) (w: PositiveInt) ->
            let x = { Count = count.Get % 5 + 1; Height = h.Get % 4 + 1; Width = w.Get % 4 + 1; Pixels = [||] }
            let x = { x with Pixels = Array.init (x.Count * x.Dimension) (fun i -> float32 (i % 17) / 16.0f) }
            let y = Npy.parse "roundtrip.npy" (Npy.encode false x)
            y = x

        testPropertyWithConfig config "npy: a mutated header is refused, or the data are read as the header declares them" <| fun (pos: int) (value: byte) ->
            // The magic string and version stay; one byte of the header text changes.
            let b = Array.copy sampleNpy
            let dataStart = 10 + int (System.BitConverter.ToUInt16(b, 8))
            b.[10 + abs pos % (dataStart - 10)] <- value
            try
                let x = Npy.parse "mutated.npy" b
                // The only readable outcome: uint8 data as they are (|u1 and <u1 read alike), in a shape that holds them.
                x.Pixels = Array.map (fun v -> float32 v / 255.0f) b.[dataStart ..] && x.Count * x.Dimension = x.Pixels.Length
            with :? DataFormatException -> true

        testPropertyWithConfig config "IDX: a mutated header after the magic number is refused, or the values are read as the dimensions declare them" <| fun (pos: int) (value: byte) ->
            let b = Array.copy sampleIdx
            let headerLen = 4 + 4 * int b.[3]
            b.[4 + abs pos % (headerLen - 4)] <- value
            try
                let a = Idx.parse "mutated.idx" b
                a.Values = b.[headerLen ..] && Array.fold (*) 1 a.Dims = a.Values.Length
            with :? DataFormatException -> true

        testCase "npy shape fields -1, NaN, 2e9, 0, too large or missing are refused naming the header's shape" <| fun () ->
            for shape in [ "(-1, 3)"; "(NaN, 3)"; "(2e9, 3)"; "(0, 3)"; "(99999999999, 3)"; "()"; "(6,)"; "(1, 1, 2, 3)" ] do
                let header = sprintf "{'descr': '|u1', 'fortran_order': False, 'shape': %s, }" shape
                let header = header + String.replicate (63 - (10 + header.Length) % 64) " " + "\n"
                let bytes = Array.concat [ [| 0x93uy |]; System.Text.Encoding.ASCII.GetBytes "NUMPY"; [| 1uy; 0uy |]
                                           System.BitConverter.GetBytes(uint16 header.Length); System.Text.Encoding.ASCII.GetBytes header; Array.create 6 7uy ]
                let e = Expect.throwsC (fun () -> Npy.parse "shape.npy" bytes |> ignore) id
                match e with
                | :? DataFormatException as d -> Expect.equal d.Field "header 'shape'" (sprintf "shape %s names the field" shape)
                | other -> failtestf "shape %s: %s instead of a DataFormatException" shape (other.GetType().Name)

        testCase "IDX dimensions of -1, 0 or 2e9 are refused naming the dimension" <| fun () ->
            for size in [ 0xFFFFFFFFu; 0u; 2_000_000_000u ] do
                let b = Array.copy sampleIdx
                b.[8 .. 11] <- System.BitConverter.GetBytes(size) |> Array.rev
                let e = Expect.throwsC (fun () -> Idx.parse "dims.idx" b |> ignore) id
                match e with
                | :? DataFormatException as d -> Expect.isTrue (d.Field = "dimension 1" || d.Field = "data length") (sprintf "size %d: field %s" size d.Field)
                | other -> failtestf "size %d: %s instead of a DataFormatException" size (other.GetType().Name)

        testPropertyWithConfig config "npy reader is total on random and mutated bytes" <| fun (bytes: byte[]) (pos: int) (value: byte) (cut: NonNegativeInt) ->
            let float32s (x: Images) = x.Pixels.Length = x.Count * x.Dimension
            total (Npy.parse "random.npy") float32s bytes
            && total (Npy.parse "mutated.npy") wellFormedImages (mutate sampleNpy pos value cut.Get)
    ]


/// The fixed binarisation of evaluation images and the learner's dynamic binarisation of minibatches.
[<Tests>]
let binarisation =
    let bConfig = { config with maxTest = 20 }
    /// count copies of one image of the given grey levels.
    let copies (count: int) (grey: float32[]) : Images =
        { Count = count; Height = 1; Width = grey.Length; Pixels = Array.init (count * grey.Length) (fun i -> grey.[i % grey.Length]) }
    let greyLevels (seed: int) = let r = System.Random(seed) in Array.init 12 (fun i -> if i = 0 then 0.0f elif i = 1 then 1.0f else float32 (r.NextDouble()))
    /// Every pixel's mean over the copies lies within 5 standard errors of its grey level.
    let meansMatch (count: int) (grey: float32[]) (mean: int -> float) =
        grey |> Array.mapi (fun d g -> abs (mean d - float g) <= 5.0 * sqrt (float g * (1.0 - float g) / float count) + 1e-12) |> Array.forall id
    testList "binarisation" [
        testPropertyWithConfig bConfig "a fixed binary draw is binary, averages to the grey levels, and is the same for the same seed" <| fun (seed: int) (s: uint64) ->
            let grey = greyLevels seed
            let x = copies 20000 grey
            let b = Images.binarisedOnce s x
            let binary = b.Pixels |> Array.forall (fun v -> v = 0.0f || v = 1.0f)
            let mean d = (Array.init 20000 (fun i -> float b.Pixels.[i * 12 + d]) |> Array.sum) / 20000.0
            binary && meansMatch 20000 grey mean && (Images.binarisedOnce s x).Pixels = b.Pixels
            && (Images.binarisedOnce (s + 1UL) x).Pixels <> b.Pixels

        testPropertyWithConfig bConfig "a fixed binary draw leaves binary images as they are" <| fun (seed: int) (s: uint64) ->
            let r = System.Random(seed)
            let x = { Count = 50; Height = 2; Width = 3; Pixels = Array.init 300 (fun _ -> float32 (r.Next 2)) }
            (Images.binarisedOnce s x).Pixels = x.Pixels

        testCase "in-order minibatches take the data's rows in order, the same every pass, continuing from the start; they draw nothing" <| fun () ->
            use _ = TorchSharp.torch.NewDisposeScope()
            // Seven rows holding their own index, minibatches of three: step t takes rows 3t, 3t + 1, 3t + 2 modulo 7.
            let data = TorchSharp.torch.arange(7L, dtype = TorchSharp.torch.float32).unsqueeze(1L)
            let c = { Vae.Core.LearnerConfig.paper 0.02 with BatchSize = 3; Order = Vae.Core.InOrder }
            let g = Vae.Core.Torch.generator 1L
            let before = g.get_state().data<byte>().ToArray()
            let rows step = (Vae.Core.Learner.minibatchAt c data g step).squeeze(1L).data<float32>().ToArray() |> Array.map int
            Expect.sequenceEqual [| for t in 0L .. 4L -> rows t |] [| [| 0; 1; 2 |]; [| 3; 4; 5 |]; [| 6; 0; 1 |]; [| 2; 3; 4 |]; [| 5; 6; 0 |] |] "steps 0-4"
            Expect.sequenceEqual (rows 7L) (rows 0L) "step 7 (21 rows on) starts the pass again"
            Expect.sequenceEqual (rows 7_000_000_001L) (rows 1L) "and so far on"
            Expect.sequenceEqual (g.get_state().data<byte>().ToArray()) before "no random draw"
            Expect.throwsT<System.ArgumentException> (fun () -> Vae.Core.Learner.minibatch c data g |> ignore) "the step-free minibatch refuses the in-order setting"

        testPropertyWithConfig bConfig "dynamic binarisation draws each minibatch afresh, averaging to the grey levels" <| fun (seed: int) ->
            use _ = TorchSharp.torch.NewDisposeScope()
            let grey = greyLevels seed
            let data = TorchSharp.torch.tensor(grey, dtype = TorchSharp.torch.float32).unsqueeze(0L)
            let c = { Vae.Core.LearnerConfig.paper 0.02 with BatchSize = 20000; Binarize = true }
            let g = Vae.Core.Torch.generator (int64 seed)
            let first, second = Vae.Core.Learner.minibatch c data g, Vae.Core.Learner.minibatch c data g
            let mean d = first.select(1L, int64 d).mean().item<float32> () |> float
            meansMatch 20000 grey mean && (first - second).abs().sum().item<float32> () > 0.0f
            && (first.eq(TorchSharp.torch.tensor(0.0f)).logical_or(first.eq(TorchSharp.torch.tensor(1.0f)))).all().item<bool> ()
    ]
