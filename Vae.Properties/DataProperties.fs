/// Properties of the data readers: round trips, and totality on random and mutated bytes.
module Vae.Properties.DataProperties

open Expecto
open FsCheck
open Vae.Core.Data
open Vae.Properties.Generators

let private config = { FsCheckConfig.defaultConfig with maxTest = 300 }

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

        testPropertyWithConfig config "npy reader is total on random and mutated bytes" <| fun (bytes: byte[]) (pos: int) (value: byte) (cut: NonNegativeInt) ->
            let float32s (x: Images) = x.Pixels.Length = x.Count * x.Dimension
            total (Npy.parse "random.npy") float32s bytes
            && total (Npy.parse "mutated.npy") wellFormedImages (mutate sampleNpy pos value cut.Get)
    ]
