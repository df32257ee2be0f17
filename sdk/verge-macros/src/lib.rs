//! `#[verge::main]`: turns `fn(Request) -> Result<Response, Error>` into the exported
//! `wasi:http/incoming-handler` of a component. Use it through the `verge-sdk` crate.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, ItemFn};

/// Marks the request handler of a Verge app. See the `verge-sdk` crate documentation.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[verge::main] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let handler = parse_macro_input!(item as ItemFn);
    if handler.sig.inputs.len() != 1 {
        return syn::Error::new_spanned(
            &handler.sig,
            "a #[verge::main] handler takes exactly one argument: `req: verge::Request`",
        )
        .to_compile_error()
        .into();
    }
    let name = &handler.sig.ident;
    quote! {
        #handler

        #[doc(hidden)]
        struct __VergeHandler;

        impl ::verge::__private::Guest for __VergeHandler {
            fn handle(
                request: ::verge::__private::IncomingRequest,
                response_out: ::verge::__private::ResponseOutparam,
            ) {
                ::verge::__private::run(request, response_out, #name)
            }
        }

        ::verge::__private::export!(__VergeHandler with_types_in ::verge::__private::wasip2);
    }
    .into()
}
