/// A model's parameters: one vector, with the networks' tensors as named views of it.
module Vae.Properties.ModelProperties

open Expecto
open FsCheck
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

let private likelihoods = [| Bernoulli; Gaussian; GaussianSigmoidMean; LinearGaussian |]

let private configOf (likelihood: int) (dn: PositiveInt) (hn: PositiveInt) (jn: PositiveInt) =
    { InputDim = size dn 1 9; HiddenUnits = size hn 1 7; LatentDim = size jn 1 4
      Likelihood = likelihoods.[abs likelihood % likelihoods.Length]; DType = f64; InitStd = 0.3
      // One to three tanh layers per MLP (the paper: one).
      HiddenLayers = 1 + (abs likelihood / likelihoods.Length) % 3 }

[<Tests>]
let tests =
    testList "parameter vector" [
        testPropertyWithConfig (config 30) "every named parameter is a view of the vector, the weights its prefix" <| fun (likelihood: int) dn hn jn ->
            use _ = torch.NewDisposeScope()
            let c = configOf likelihood dn hn jn
            let m = VaeModel.create c (Torch.generator 1L)
            let layout = VaeModel.layout c
            // Each element holds its own index: every view then shows where it lives.
            Torch.noGrad (fun () -> m.ParameterVector.copy_(torch.arange(layout.Count, dtype = f64)) |> ignore)
            let ranges = VaeModel.parameters m |> List.map (fun p -> p, p.Tensor.min().item<double> (), p.Tensor.max().item<double> ())
            let covered = ranges |> List.sumBy (fun (p, _, _) -> p.Tensor.numel())
            covered = layout.Count
            && ranges |> List.forall (fun (p, lo, hi) -> hi - lo + 1.0 = float (p.Tensor.numel()) && (p.IsWeight = (hi < float layout.WeightCount)))
            && ranges |> List.forall (fun (p, _, _) -> p.Tensor.is_contiguous())

        testPropertyWithConfig (config 30) "create draws every parameter in the order of parameterShapes, whatever the layout" <| fun (likelihood: int) dn hn jn (seed: int) ->
            use _ = torch.NewDisposeScope()
            let c = configOf likelihood dn hn jn
            let m = VaeModel.create c (Torch.generator (int64 seed))
            let g = Torch.generator (int64 seed)
            let drawn = VaeModel.parameterShapes c |> List.map (fun (_, shape) -> torch.randn(shape, dtype = f64, generator = g).mul_(Torch.constant c.InitStd))
            List.forall2 (fun (t: Tensor) (d: Tensor) -> t.eq(d).all().item<bool> ()) (List.ofArray (VaeModel.tensors m)) drawn

        testPropertyWithConfig (config 20) "copy and ofTensors hold the same values in a vector of their own" <| fun (likelihood: int) dn hn jn ->
            use _ = torch.NewDisposeScope()
            let c = configOf likelihood dn hn jn
            let m = VaeModel.create c (Torch.generator 2L)
            let copied, rebuilt = VaeModel.copy m, VaeModel.ofTensors c (VaeModel.tensors m)
            let same (a: VaeModel) = a.ParameterVector.eq(m.ParameterVector).all().item<bool> ()
            let result = same copied && same rebuilt
            Torch.noGrad (fun () -> copied.ParameterVector.zero_() |> ignore; rebuilt.ParameterVector.zero_() |> ignore)
            result && (VaeModel.tensors m |> Array.forall (fun t -> t.abs().sum().item<double> () > 0.0))

        testCase "a vector of the wrong length is refused, naming the expected length" <| fun () ->
            let c = { InputDim = 4; HiddenUnits = 3; LatentDim = 2; Likelihood = Bernoulli; DType = f64; InitStd = 0.1; HiddenLayers = 1 }
            let e = Expect.throwsC (fun () -> VaeModel.ofVector c (torch.zeros([| 5L |], dtype = f64)) |> ignore) id
            Expect.stringContains e.Message (string (VaeModel.layout c).Count) "the expected length"
    ]
