using TorchSharp;
using TorchSharp.Modules;
using Vae.Core;
using static TorchSharp.torch;

namespace Vae;

/// <summary>A network of a <see cref="VariationalAutoEncoder"/> as a TorchSharp module whose parameters are the model's
/// own: each is a <see cref="Parameter"/> over the same memory as the model's parameter vector, so an optimiser step
/// through the module changes the model (and the model's training changes the module). Its forward pass is the
/// model's own network code (Appendix C), run on these parameters. Layers are submodules named as PyTorch's
/// <c>nn.Linear</c> would be (<c>hidden</c>, <c>mean</c>, <c>logvar</c>, <c>logits</c>), so <c>state_dict</c> keys read
/// <c>hidden.weight</c> and so on.</summary>
public abstract class VaeNetworkModule<TOutput> : nn.Module<Tensor, TOutput>
{
    private protected readonly VaeModel Network;

    private protected VaeNetworkModule(string name, VaeModel core, IEnumerable<NamedParameter> own) : base(name)
    {
        var parameters = new Dictionary<string, Parameter>();
        foreach (var p in own) parameters[p.Name] = new Parameter(p.Tensor.alias(), requires_grad: true);
        foreach (var group in parameters.GroupBy(kv => kv.Key.Split('.')[1]))
        {
            var byKind = group.ToDictionary(kv => kv.Key.Split('.').Last(), kv => kv.Value);
            if (byKind.ContainsKey("weight"))
            {
                // A stand-in nn.Linear whose weight and bias are replaced by the model's: its name and state_dict keys.
                var layer = nn.Linear(1, 1, dtype: core.Config.DType);
                layer.weight = byKind["weight"];
                layer.bias = byKind["bias"];
                register_module(group.Key, layer);
            }
            else register_parameter(group.Key, byKind.Values.Single());
        }
        // The model's networks with this module's parameters in place of its tensors (the other network's stay as they are).
        Network = VaeModelModule.assemble(core.Config, Microsoft.FSharp.Core.FuncConvert.FromFunc<string, Tensor>(
            n => parameters.TryGetValue(n, out var p) ? p : VaeModelModule.parameters(core).First(q => q.Name == n).Tensor), core.ParameterVector);
    }

    private protected Tensor InModelType(Tensor x) => x.dtype == Network.Config.DType ? x : x.to_type(Network.Config.DType);
}

/// <summary>The recognition model q(z|x) (Appendix C.2) as a TorchSharp module: <c>forward(x)</c> gives the mean and
/// log-variance of q(z|x) for a batch of datapoints, as <see cref="VariationalAutoEncoder.Encode(Tensor)"/>.</summary>
public sealed class EncoderModule : VaeNetworkModule<(Tensor Mean, Tensor LogVariance)>
{
    internal EncoderModule(VaeModel core) : base("VaeEncoder", core, VaeModelModule.encoderParameters(core)) { }

    /// <summary>q(z|x)'s mean and log-variance for x [N, D].</summary>
    public override (Tensor Mean, Tensor LogVariance) forward(Tensor x)
    {
        var q = VaeModelModule.encode(Network, InModelType(x));
        return (q.Mean, q.LogVar);
    }
}

/// <summary>The generative model p(x|z) (Appendix C) as a TorchSharp module: <c>forward(z)</c> gives the decoder's mean
/// E[x|z] (Bernoulli probabilities or Gaussian means), as <see cref="VariationalAutoEncoder.Decode(Tensor)"/>; it
/// composes in an <c>nn.Sequential</c>.</summary>
public sealed class DecoderModule : VaeNetworkModule<Tensor>
{
    internal DecoderModule(VaeModel core) : base("VaeDecoder", core, VaeModelModule.decoderParameters(core)) { }

    /// <summary>E[x|z] for latent points z [N, J].</summary>
    public override Tensor forward(Tensor z) => VaeModelModule.decodeMean(Network, InModelType(z));
}
