/// Fuzzing of the checkpoint reader behind its CRC: mutated files and edited fields are refused with a
/// CheckpointException naming the file, or read back exactly; nothing is accepted as something else.
module Vae.Properties.CheckpointProperties

open Vae
open Expecto
open FsCheck
open Vae.Core

let private config = { FsCheckConfig.defaultConfig with maxTest = 300; replay = Some (Generators.propertySeed, 0x9E3779B97F4A7C15UL, None) }

/// A small AEVB run's checkpoint, as the trainer writes it.
let private runCheckpoint =
    lazy (
        let settings =
            { Algorithm = AevbAlgorithm
              Model = { InputDim = 6; HiddenUnits = 4; LatentDim = 2; Likelihood = Bernoulli; DType = TorchSharp.torch.float32; InitStd = 0.01
                        // Two tanh layers: the field that deeper networks add is read and fuzzed too.
                        HiddenLayers = 2 }
              Learner = LearnerConfig.paper 0.02; Seed = 3L; Dataset = "fuzz" }
        Checkpoint.toBytes (TrainingRun.toCheckpoint Map.empty (TrainingRun.create settings)))

/// Bytes with a CRC-32 that matches them again, so that a mutation reaches the parser behind the check.
let private withCrc (b: byte[]) =
    let body = b.[.. b.Length - 5]
    Array.append body (System.BitConverter.GetBytes(Checkpoint.crc32 body))

/// Reads a run from bytes: the parser, then the run's own checks (settings, shapes, dtypes).
let private readRun (b: byte[]) = TrainingRun.ofCheckpoint "fuzz.vae" (Checkpoint.ofBytes "fuzz.vae" b)

[<Tests>]
let checkpointFuzz =
    testList "checkpoint reader" [
        testPropertyWithConfig config "bytes mutated under a recomputed CRC are refused with a CheckpointException or read back exactly" <| fun (pos: int) (value: byte) (n: PositiveInt) ->
            let b = Array.copy runCheckpoint.Value
            // Mutate one to three bytes of the body (not the trailing CRC), mostly in its first kilobyte of headers.
            let body = b.Length - 4
            for k in 0 .. n.Get % 3 do
                let at = abs (pos + 7919 * k) % (if k = 0 then min body 1024 else body)
                b.[at] <- value + byte k
            let b = withCrc b
            try
                let contents = Checkpoint.ofBytes "fuzz.vae" b
                // Accepted bytes must be exactly what the writer makes of what was read: nothing misread or dropped.
                let exact = Checkpoint.toBytes contents = b
                exact && (try readRun b |> ignore; true with :? CheckpointException -> true)
            with :? CheckpointException -> true

        testCase "a field set to -1, NaN, infinity, 2e9, nothing or text is refused naming the field, or honoured" <| fun () ->
            let contents = Checkpoint.ofBytes "fuzz.vae" runCheckpoint.Value
            let freeText = set [ "dataset" ]
            let accepted = ResizeArray()
            for KeyValue(key, original) in contents.Fields do
                for bad in [ "-1"; "NaN"; "Infinity"; "2e9"; ""; "abc"; "0" ] do
                    if not (freeText.Contains key) && bad <> original then
                        let edited = Checkpoint.toBytes { contents with Fields = contents.Fields.Add(key, bad) }
                        try
                            let run = readRun edited
                            // Honoured: the run writes the value back as read (a larger step size, a zero warm-up).
                            let again = (TrainingRun.toCheckpoint Map.empty run).Fields.[key]
                            if System.Double.Parse(again, System.Globalization.CultureInfo.InvariantCulture) <> System.Double.Parse(bad, System.Globalization.CultureInfo.InvariantCulture) then
                                failtestf "field '%s' = '%s' was read as '%s'" key bad again
                            accepted.Add(sprintf "%s = %s" key bad)
                        with
                        | :? CheckpointException as e ->
                            Expect.stringContains e.Message "fuzz.vae" "the file is named"
                        | :? System.FormatException -> failtestf "field '%s' = '%s' was accepted as something else" key bad
            // What may be honoured: a finite non-negative number where one is meaningful; nothing else.
            for a in accepted do
                Expect.isTrue (a.EndsWith " = 2e9" || a.EndsWith " = 0") (sprintf "accepted %s" a)
    ]

/// The same run's contents as a safetensors file.
let private runSafetensors = lazy (Checkpoint.ofBytes "fuzz.vae" runCheckpoint.Value |> Safetensors.toBytes)

[<Tests>]
let safetensorsFuzz =
    testPropertyWithConfig config "safetensors: a mutated header or length is refused with a CheckpointException, or the run reads as written" <| fun (pos: int) (value: byte) (n: PositiveInt) ->
        let original = runSafetensors.Value
        let b = Array.copy original
        let headerEnd = 8 + int (System.BitConverter.ToUInt64(b, 0))
        for k in 0 .. n.Get % 3 do
            b.[abs (pos * 7919 + 131 * k) % headerEnd] <- value + byte k
        let expected = (Safetensors.ofBytes "original.safetensors" original).Tensors |> Map.ofList
        try
            // The parser, then the run's own checks (names, shapes, dtypes, settings).
            let run = TrainingRun.ofCheckpoint "fuzz.safetensors" (Safetensors.ofBytes "fuzz.safetensors" b)
            // Accepted: every tensor of the run is the one written under its name, whole.
            (TrainingRun.toCheckpoint Map.empty run).Tensors |> List.forall (fun (name, t) ->
                match expected.TryFind name with
                | Some e -> e.dtype = t.dtype && e.shape = t.shape && e.eq(t).all().item<bool> ()
                | None -> false)
        with :? CheckpointException -> true
