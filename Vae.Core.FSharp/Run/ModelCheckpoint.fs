namespace Vae.Core

open Vae
open System
open System.Globalization
open TorchSharp

/// A model's configuration and parameters in checkpoint form (shared by model files and training runs).
[<RequireQualifiedAccess>]
module ModelCheckpoint =

    let internal inv (x: float) = x.ToString("R", CultureInfo.InvariantCulture)

    let private likelihoodName = function Bernoulli -> "bernoulli" | Gaussian -> "gaussian" | GaussianSigmoidMean -> "gaussian-sigmoid-mean" | LinearGaussian -> "linear-gaussian"

    /// The model's configuration as text fields.
    let fields (c: ModelConfig) : (string * string) list =
        [ "model.input", string c.InputDim
          "model.hidden", string c.HiddenUnits
          "model.latent", string c.LatentDim
          "model.likelihood", likelihoodName c.Likelihood
          "model.dtype", (if c.DType = torch.float64 then "float64" else "float32")
          "model.init_std", inv c.InitStd ]
        // Written for deeper networks only, so that the paper's checkpoints keep their bytes; absent means 1.
        @ (if c.HiddenLayers <> 1 then [ "model.hidden_layers", string c.HiddenLayers ] else [])

    /// Typed readers of a checkpoint's fields that raise a CheckpointException naming a bad field.
    type internal Reader(file: string, c: CheckpointContents) =
        member _.Field k = Checkpoint.field file k c
        member _.Fail what : 'a = raise (CheckpointException(file, what))
        member r.Int k = match Int32.TryParse(r.Field k, NumberStyles.Integer, CultureInfo.InvariantCulture) with | true, v -> v | _ -> r.Fail(sprintf "field '%s' = '%s', expected an integer" k (r.Field k))
        member r.Int64 k = match Int64.TryParse(r.Field k, NumberStyles.Integer, CultureInfo.InvariantCulture) with | true, v -> v | _ -> r.Fail(sprintf "field '%s' = '%s', expected an integer" k (r.Field k))
        member r.Num k = match Double.TryParse(r.Field k, NumberStyles.Float, CultureInfo.InvariantCulture) with | true, v when Double.IsFinite v -> v | _ -> r.Fail(sprintf "field '%s' = '%s', expected a finite number" k (r.Field k))
        /// A number field that must be above zero.
        member r.Positive k = let v = r.Num k in (if v <= 0.0 then r.Fail(sprintf "field '%s' = '%s', expected a positive number" k (r.Field k))); v
        /// A number field that must not be negative.
        member r.NonNegative k = let v = r.Num k in (if v < 0.0 then r.Fail(sprintf "field '%s' = '%s', expected a number of at least 0" k (r.Field k))); v
        /// A whole-number field that must not be negative.
        member r.Count k = let v = r.Int64 k in (if v < 0L then r.Fail(sprintf "field '%s' = '%s', expected an integer of at least 0" k (r.Field k))); v
        member r.Bool k = match Boolean.TryParse(r.Field k) with | true, v -> v | _ -> r.Fail(sprintf "field '%s' = '%s', expected True or False" k (r.Field k))

    /// The model configuration recorded in a checkpoint.
    let config (file: string) (c: CheckpointContents) : ModelConfig =
        let r = Reader(file, c)
        let likelihood =
            match r.Field "model.likelihood" with
            | "bernoulli" -> Bernoulli | "gaussian" -> Gaussian | "gaussian-sigmoid-mean" -> GaussianSigmoidMean
            | "linear-gaussian" -> LinearGaussian
            | v -> r.Fail(sprintf "field 'model.likelihood' = '%s', expected bernoulli, gaussian, gaussian-sigmoid-mean or linear-gaussian" v)
        let dtype =
            match r.Field "model.dtype" with
            | "float32" -> torch.float32 | "float64" -> torch.float64
            | v -> r.Fail(sprintf "field 'model.dtype' = '%s', expected float32 or float64" v)
        let model = { InputDim = r.Int "model.input"; HiddenUnits = r.Int "model.hidden"; LatentDim = r.Int "model.latent"; Likelihood = likelihood; DType = dtype; InitStd = r.Num "model.init_std"
                      HiddenLayers = if c.Fields.ContainsKey "model.hidden_layers" then r.Int "model.hidden_layers" else 1 }
        (try VaeModel.validate model with :? ArgumentException as e -> r.Fail e.Message)
        // Every parameter must be in the file with its shape before anything is allocated from the sizes.
        let expected = VaeModel.parameterShapes model
        for name, shape in expected do
            Checkpoint.tensor file name dtype shape c |> ignore
        // A tanh layer the configuration does not have (a deeper network's file with its layer count lost) would be
        // dropped without a word: refuse it, naming the tensor.
        let names = expected |> List.map fst |> set
        for name, _ in c.Tensors do
            let parts = name.Split('/') |> Array.last |> fun n -> n.Split('.')
            if parts.Length = 3 && (parts.[0] = "encoder" || parts.[0] = "decoder") && parts.[1].StartsWith "hidden"
               && not (names.Contains(String.Join(".", parts))) then
                r.Fail(sprintf "tensor '%s' is a tanh layer beyond the %d that field 'model.hidden_layers' gives (absent: 1)" name model.HiddenLayers)
        model

    /// The model a checkpoint holds (its configuration and parameters, checked for shape and dtype), built once in a
    /// vector of its own: the contents' tensors stay the caller's.
    let read (file: string) (c: CheckpointContents) : VaeModel =
        let config = config file c
        VaeModel.ofTensors config [ for name, shape in VaeModel.parameterShapes config -> Checkpoint.tensor file name config.DType shape c ]

    /// A model as checkpoint contents (kind "model").
    let write (m: VaeModel) : CheckpointContents =
        { Fields = Map.ofList (("kind", "model") :: fields m.Config)
          Tensors = [ for p in VaeModel.parameters m -> p.Name, p.Tensor ] }
